"""One verifier for both token formats, chosen by the token's shape."""

from __future__ import annotations

from oauth_server.oauth.tokens.verify.claims import AccessClaims, TokenVerifier
from oauth_server.oauth.tokens.verify.jwt import looks_like_jwt

__all__ = ["AnyTokenVerifier"]


class AnyTokenVerifier:
    """A JWT has two dots; an opaque token (base64url) has none."""

    def __init__(self, *, jwt: TokenVerifier, opaque: TokenVerifier | None) -> None:
        self._jwt = jwt
        self._opaque = opaque

    async def verify(self, token: str) -> AccessClaims:
        if looks_like_jwt(token) or self._opaque is None:
            return await self._jwt.verify(token)
        return await self._opaque.verify(token)
