"""Verification of opaque access tokens against the token store, with a cache.

A validated token is remembered (by the hash of its value) until it expires or for five
minutes, whichever is sooner; a revocation evicts it at once in the revoking process and,
through the change feed, within ``OAUTH_SERVER_CACHE_SYNC_INTERVAL`` in every other. Unknown
tokens are never cached: one issued a moment ago by another instance must work here too.
"""

from __future__ import annotations

from contextlib import suppress

from oauth_server.cache import TTLCache
from oauth_server.clock import Clock
from oauth_server.crypto import hash_token
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
        self._cache: TTLCache[bytes, AccessClaims] = TTLCache(max_entries=cache_size)

    async def verify(self, token: str) -> AccessClaims:
        token_hash = hash_token(token)
        now = self._clock.now()
        found, claims = self._cache.get(token_hash)
        if not found or claims is None:
            claims = await self._load(token_hash)
            self._cache.set(token_hash, claims, min(claims.expires_at - now, _CACHE_TTL_CAP))
        if claims.expires_at <= now:
            raise InvalidToken("the access token has expired")
        return claims

    async def _load(self, token_hash: bytes) -> AccessClaims:
        record = await self._repository.get(token_hash=token_hash)
        if record is None:
            raise InvalidToken("the access token is not valid")
        if record.revoked_at is not None:
            raise InvalidToken("the access token was revoked")
        return AccessClaims(
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

    def forget(self, token_hash: bytes) -> None:
        self._cache.pop(token_hash)

    def on_change(self, change: Change) -> None:
        with suppress(ValueError):  # not a hex hash: nothing of ours
            self.forget(bytes.fromhex(change.key))
