"""Bearer tokens at the resource server (RFC 6750, OAuth 2.1 §5).

Only the ``Authorization`` header is read: OAuth 2.1 §5.1 removes the query-string method, so a
``?access_token=`` is ignored, and the restaurants API takes JSON bodies, so the form-body
method (RFC 6750 §2.2) never applies.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import TYPE_CHECKING

from oauth_server.errors import (
    BearerChallenge,
    InsufficientScope,
    InvalidBearerRequest,
    InvalidToken,
    TooManyRequests,
)
from oauth_server.oauth.http import OAuthRequest
from oauth_server.oauth.tokens.verify.claims import MAX_TOKEN_LENGTH, AccessClaims, TokenVerifier

if TYPE_CHECKING:
    from oauth_server.oauth.ratelimit import RateLimiter

__all__ = ["ResourceGuard", "bearer_token"]

# b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="   (RFC 6750 §2.1)
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def bearer_token(request: OAuthRequest) -> str | None:
    """The bearer token of the request, ``None`` when it sent none.

    Raises :class:`BearerChallenge` for another authentication scheme and
    :class:`InvalidBearerRequest` for a malformed header.
    """
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise BearerChallenge("use the Bearer authentication scheme")
    token = token.strip()
    if not token:
        raise InvalidBearerRequest("the Bearer credentials are empty")
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken("the access token is too long")
    if _B64TOKEN.fullmatch(token) is None:
        raise InvalidBearerRequest("the Bearer credentials are malformed")
    return token


class ResourceGuard:
    """Authenticates requests to one protected resource and checks their scope."""

    def __init__(
        self,
        verifier: TokenVerifier,
        *,
        resource: str,
        realm: str,
        resource_metadata: str | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self._verifier = verifier
        self._resource = resource
        self._realm = realm
        self._resource_metadata = resource_metadata
        self._limiter = limiter

    async def authenticate(
        self, request: OAuthRequest, *, any_of: Collection[str], required: bool
    ) -> AccessClaims | None:
        """Claims of a valid token holding one of ``any_of``.

        Without credentials: ``None`` when not ``required`` (the public view), else a 401
        challenge. A token that is invalid is never treated as absent. Refused tokens are
        counted per address; once the budget is spent, that address gets 429 (RFC 6585 §4)
        before its tokens are looked at.
        """
        limiter = self._limiter
        try:
            token = bearer_token(request)
            if token is None:
                if required:
                    raise BearerChallenge("an access token is required")
                return None
            if limiter is not None and limiter.bearer_lockouts:
                limiter.before_bearer(request.client_ip)
            claims = await self._verifier.verify(token)
            request.notes.client_id = claims.client_id
            if claims.subject != claims.client_id:  # client_credentials: sub is the client
                request.notes.user_id = claims.subject
            # RFC 8707 / RFC 9068 §4: refuse tokens minted for another resource.
            if self._resource not in claims.audience:
                raise InvalidToken("the access token is not meant for this resource")
            if claims.scope.isdisjoint(any_of):
                raise InsufficientScope(
                    "the access token lacks the required scope", scope=" ".join(sorted(any_of))
                )
            return claims
        except InvalidToken as error:
            error.realm = self._realm
            error.resource_metadata = self._resource_metadata
            if limiter is not None:
                try:
                    await limiter.bearer_failed(request.client_ip)
                except TooManyRequests as limited:
                    raise self._challenging(limited) from None
            raise
        except (BearerChallenge, InvalidBearerRequest, InsufficientScope) as error:
            error.realm = self._realm
            error.resource_metadata = self._resource_metadata
            raise
        except TooManyRequests as limited:
            raise self._challenging(limited) from None

    def _challenging(self, limited: TooManyRequests) -> TooManyRequests:
        challenge = BearerChallenge(realm=self._realm, resource_metadata=self._resource_metadata)
        limited.challenge = challenge.headers()["WWW-Authenticate"]
        return limited
