"""What the core reports for metrics, and the small interface it reports through.

Like the audit trail (:mod:`oauth_server.audit.events`), each component with something to count
is given an :class:`Observer` at construction: the Prometheus implementation
(:mod:`oauth_server.metrics`) in the server, :data:`NO_OBSERVER` by default, so the core never
imports a metrics library and unit tests need not care.

Why a seam of its own rather than counting audit events: audit events are deliberately
throttled (a rate limit being hit is recorded once a minute per key) and some outcomes are not
security events (an authorization approved without a consent page, an active introspection);
metrics must count every occurrence.

Every method returns at once and never raises: counting must not slow down or fail the work it
describes. Arguments are protocol identifiers chosen by the server (a grant type, an RFC error
code, a limit's name) or an *authenticated* client's id — never request content, never a
secret.
"""

from __future__ import annotations

from typing import Literal, Protocol

__all__ = ["NO_OBSERVER", "AuthorizationOutcome", "NullObserver", "Observer"]

AuthorizationOutcome = Literal["approved", "denied", "login_failed"]
"""``approved``: an authorization code was issued (after consent, or with consent already
given); ``denied``: the user refused on the consent page (RFC 6749 §4.1.2.1
``access_denied``); ``login_failed``: a wrong username or password on the login page."""


class Observer(Protocol):
    def token_issued(self, grant_type: str, client_id: str) -> None:
        """The token endpoint issued tokens to the authenticated ``client_id``."""
        ...

    def token_failed(self, error: str, client_id: str | None) -> None:
        """The token endpoint answered with the RFC 6749 §5.2 ``error``; ``client_id`` when
        the client had authenticated, else ``None``."""
        ...

    def refresh_rotated(self) -> None:
        """A refresh token was exchanged for a successor (RFC 9700 §4.14.2 rotation)."""
        ...

    def refresh_reused(self) -> None:
        """A rotated refresh token was presented again; its family was revoked."""
        ...

    def code_replayed(self) -> None:
        """A redeemed authorization code was presented again; its tokens were revoked
        (RFC 6749 §4.1.2)."""
        ...

    def authorization(self, outcome: AuthorizationOutcome) -> None:
        """A browser sign-in reached ``outcome``."""
        ...

    def rate_limited(self, limit: str) -> None:
        """The rate limit named ``limit`` (the policy's name, such as
        ``auth_failures_per_client``) refused a request."""
        ...

    def introspected(self, active: bool) -> None:
        """An authorized introspection (RFC 7662 §2.2) answered ``active``."""
        ...


class NullObserver:
    """Counts nothing (the default where no metrics are wired in)."""

    def token_issued(self, grant_type: str, client_id: str) -> None:
        return None

    def token_failed(self, error: str, client_id: str | None) -> None:
        return None

    def refresh_rotated(self) -> None:
        return None

    def refresh_reused(self) -> None:
        return None

    def code_replayed(self) -> None:
        return None

    def authorization(self, outcome: AuthorizationOutcome) -> None:
        return None

    def rate_limited(self, limit: str) -> None:
        return None

    def introspected(self, active: bool) -> None:
        return None


NO_OBSERVER: Observer = NullObserver()
