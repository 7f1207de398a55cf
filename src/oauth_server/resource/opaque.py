"""Verification of opaque access tokens against the token store."""

from __future__ import annotations

from oauth_server.clock import Clock
from oauth_server.crypto import hash_token
from oauth_server.errors import InvalidToken
from oauth_server.resource.bearer import AccessClaims
from oauth_server.storage.protocols import AccessTokenRepository

__all__ = ["OpaqueTokenVerifier"]


class OpaqueTokenVerifier:
    def __init__(self, repository: AccessTokenRepository, *, issuer: str, clock: Clock) -> None:
        self._repository = repository
        self._issuer = issuer
        self._clock = clock

    async def verify(self, token: str) -> AccessClaims:
        record = await self._repository.get(token_hash=hash_token(token))
        if record is None:
            raise InvalidToken("the access token is not valid")
        if record.revoked_at is not None:
            raise InvalidToken("the access token was revoked")
        if record.expires_at <= self._clock.now():
            raise InvalidToken("the access token has expired")
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
