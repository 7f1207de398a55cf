"""Apply, in this process at once, the voiding of access tokens the store has just recorded.

The store announces every voided token on the change feed (a JWT's ``jti``, an opaque token's
hex selector), so the other processes refuse it within one poll
(``OAUTH_SERVER_CACHE_SYNC_INTERVAL``); the process that voided it must not wait for its own
poll. Used by the grants that revoke what a code or a refresh family issued.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import suppress

from oauth_server.oauth.tokens.verify.opaque import OpaqueTokenVerifier
from oauth_server.oauth.tokens.verify.revocation import RevokedJtis
from oauth_server.storage.models import IssuedToken

__all__ = ["IssuedTokenVoider"]


class IssuedTokenVoider:
    def __init__(self, *, revoked: RevokedJtis, opaque: OpaqueTokenVerifier | None) -> None:
        self._revoked = revoked
        self._opaque = opaque

    def voided(self, tokens: Iterable[IssuedToken]) -> None:
        for token in tokens:
            if token.token_format == "jwt":
                self._revoked.add(token.token_id, token.expires_at)
            elif self._opaque is not None:
                with suppress(ValueError):  # not hex: not one of ours
                    self._opaque.forget(bytes.fromhex(token.token_id))
