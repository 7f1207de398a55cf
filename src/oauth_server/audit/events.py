"""What the audit trail records, and the small interface the core records it through.

The core never reaches for a global: each component that has something to report is given an
:class:`AuditRecorder` (the process's :class:`~oauth_server.audit.trail.AuditTrail` in the
server and the CLI, :data:`NO_AUDIT` by default, so unit tests need not care).

Events carry identifiers, addresses and reasons — never a secret or a token. The allowed
fields are a ``TypedDict``, so ``record("token_issued", access_token=…)`` does not type-check:
there is no field a secret could go into by accident.
"""

from __future__ import annotations

from typing import Literal, Protocol, TypedDict, Unpack

__all__ = ["NO_AUDIT", "ActingAudit", "AuditFields", "AuditKind", "AuditRecorder", "NullAudit"]

AuditKind = Literal[
    "chain_started",
    "audit_events_dropped",
    "client_auth_failed",
    "token_issued",
    "token_revoked",
    "client_created",
    "client_deleted",
    "client_secret_rotated",
    "client_updated",
    "client_tokens_revoked",
    "client_registered",
    "client_registration_updated",
    "initial_access_token_created",
    "initial_access_token_revoked",
    "signing_key_created",
    "signing_key_removed",
    "signing_key_purged",
    "rate_limited",
    "user_created",
    "user_password_changed",
    "user_disabled",
    "user_enabled",
    "user_admin_granted",
    "user_admin_withdrawn",
    "user_deleted",
    "user_updated",
    "user_sessions_ended",
    "user_tokens_revoked",
    "consent_revoked",
    "login_succeeded",
    "login_failed",
    "consent_granted",
    "consent_denied",
    "logout",
    "authorization_code_replayed",
    "refresh_token_reused",
    "refresh_family_revoked",
    "app_access_revoked",
    "session_ended",
]


class AuditFields(TypedDict, total=False):
    """The fields an event may carry. Add one here (with care) rather than smuggling data in
    ``reason``; none may ever hold a secret, a token or a password."""

    client_id: str
    ip: str
    """The client's address as the server sees it (see ``OAUTH_SERVER_TRUSTED_PROXIES``)."""
    endpoint: str
    """The request path, for events raised while serving a request."""
    reason: str
    """A short fixed code or phrase chosen by the server, never request content."""
    token_id: str
    """A JWT's ``jti``, or the hex selector of an opaque token — never the token."""
    token_type: str
    scope: str
    kid: str
    alg: str
    limit: str
    """The rate limit that was exceeded, as its owner names it (for example ``10/second``)."""
    user_id: str
    """A user's stable id (its ``sub``)."""
    username: str
    count: int
    family_id: str
    """A refresh-token family's id (names the grant, grants nothing)."""
    actor_client_id: str
    """Who made a change through the admin API: the client whose token was used."""
    actor_user_id: str
    """…and the user that token was issued for, if any."""
    pid: int
    host: str
    program: str
    """Which program writes the chain: ``server`` or the CLI command."""


class AuditRecorder(Protocol):
    def record(self, kind: AuditKind, /, **fields: Unpack[AuditFields]) -> None:
        """Note a security event. Returns at once and never raises: recording must not slow
        down or fail the work it describes."""
        ...


class NullAudit:
    """Records nothing (the default where no trail is wired in)."""

    def record(self, kind: AuditKind, /, **fields: Unpack[AuditFields]) -> None:
        return None


NO_AUDIT: AuditRecorder = NullAudit()


class ActingAudit:
    """Records every event through ``base`` with the actor's fields added: whatever a core
    component records while serving an admin request names who asked for it."""

    __slots__ = ("_actor", "_base")

    def __init__(self, base: AuditRecorder, *, client_id: str, user_id: str | None = None) -> None:
        self._base = base
        self._actor: AuditFields = {"actor_client_id": client_id}
        if user_id is not None:
            self._actor["actor_user_id"] = user_id

    def record(self, kind: AuditKind, /, **fields: Unpack[AuditFields]) -> None:
        merged: AuditFields = {**fields, **self._actor}
        self._base.record(kind, **merged)
