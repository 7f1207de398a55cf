"""Verification of opaque (split) access tokens against the token store, with a cache.

The selector finds the row; the verifier's SHA-256 must equal the stored one (constant-time).
A found row is remembered by selector until the token expires or for five minutes, whichever
is sooner — the verifier is still checked on every use; a revocation evicts it at once in
the revoking process and, through the change feed, within ``OAUTH_SERVER_CACHE_SYNC_INTERVAL``
in every other. Unknown selectors are never cached: a token issued a moment ago by another
instance must work here too.
"""

from __future__ import annotations

import hmac
from contextlib import suppress

from oauth_server.cache import TTLCache
from oauth_server.clock import Clock
from oauth_server.crypto import parse_split_token
from oauth_server.errors import InvalidToken
from oauth_server.resource.bearer import AccessClaims
from oauth_server.storage.models import Change
from oauth_server.storage.protocols import AccessTokenRepository

__all__ = ["OpaqueTokenVerifier"]

_CACHE_TTL_CAP = 300.0


class OpaqueTokenVerifier:
    def __init__(
        self,
        repository: AccessTokenRepository,
        *,
        issuer: str,
        clock: Clock,
        cache_size: int = 100_000,
    ) -> None:
        self._repository = repository
        self._issuer = issuer
        self._clock = clock
        self._cache: TTLCache[bytes, tuple[bytes, AccessClaims]] = TTLCache(max_entries=cache_size)

    async def verify(self, token: str) -> AccessClaims:
        parsed = parse_split_token(token)
        if parsed is None:
            raise InvalidToken("the access token is not valid")
        selector, verifier_hash = parsed
        now = self._clock.now()
        found, entry = self._cache.get(selector)
        if not found or entry is None:
            entry = await self._load(selector)
            self._cache.set(selector, entry, min(entry[1].expires_at - now, _CACHE_TTL_CAP))
        stored_hash, claims = entry
        if not hmac.compare_digest(verifier_hash, stored_hash):
            raise InvalidToken("the access token is not valid")
        if claims.expires_at <= now:
            raise InvalidToken("the access token has expired")
        return claims

    async def _load(self, selector: bytes) -> tuple[bytes, AccessClaims]:
        record = await self._repository.get(selector=selector)
        if record is None:
            raise InvalidToken("the access token is not valid")
        if record.revoked_at is not None:
            raise InvalidToken("the access token was revoked")
        return record.verifier_hash, AccessClaims(
            client_id=record.client_id,
            subject=record.subject,
            scope=frozenset(record.scope.split()),
            issued_at=record.issued_at,
            expires_at=record.expires_at,
            audience=tuple(record.audience.split()),
            issuer=self._issuer,
            scope_text=record.scope,
            token_format="opaque",
        )

    def forget(self, selector: bytes) -> None:
        self._cache.pop(selector)

    def on_change(self, change: Change) -> None:
        with suppress(ValueError):  # not a hex hash: nothing of ours
            self.forget(bytes.fromhex(change.key))
