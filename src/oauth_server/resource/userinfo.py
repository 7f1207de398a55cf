"""The OpenID Connect UserInfo endpoint (OIDC Core §5.3): an OAuth 2.0 protected resource of
the authorization server that returns claims about the signed-in user.

* GET and POST (§5.3.1); the access token in the ``Authorization: Bearer`` header (RFC 6750
  §2.1) or, on POST, as ``access_token`` in a form body (§2.2; §5.3.1 says the endpoint
  SHOULD accept both). Both at once → ``invalid_request`` (RFC 6750 §2: clients "MUST NOT use
  more than one method"). A query-string token is ignored (OAuth 2.1 §5.1).
* The token must carry scope ``openid`` (§5.3: the endpoint serves OpenID Connect requests),
  else 403 ``insufficient_scope`` (RFC 6750 §3.1). A ``client_credentials`` token never has
  it (that grant never grants the OpenID Connect scopes), so it is refused that way.
* The token's subject must be a user that exists and is enabled; otherwise 401
  ``invalid_token`` — the grant behind the token no longer stands.
* Any audience of this server's tokens is accepted: the userinfo endpoint belongs to the
  issuer, and the ``openid`` scope is what entitles a client to it.
* The answer: ``sub`` (the ID token's, the user id, §5.3.2: they MUST match) and the claims of
  the granted scopes (§5.4), never cached (``Cache-Control: no-store``).

The user is read from the database on each call (a primary-key read). Userinfo is not on the
hot path (a client calls it once per sign-in, not per API call), and no change-feed kind
announces user changes, so a cache could serve a disabled user's claims; the read is the
simpler, always-current answer.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from oauth_server.errors import (
    BearerChallenge,
    InsufficientScope,
    InvalidBearerRequest,
    InvalidToken,
    TooManyRequests,
)
from oauth_server.oauth.clients import ClientDirectory
from oauth_server.oauth.cors import CorsGate
from oauth_server.oauth.http import OAuthRequest, OAuthResponse
from oauth_server.oauth.params import parse_form
from oauth_server.oauth.tokens.id_token import scope_claims
from oauth_server.oauth.tokens.verify.claims import MAX_TOKEN_LENGTH, TokenVerifier
from oauth_server.resource.bearer import bearer_token
from oauth_server.storage.protocols import UserRepository

if TYPE_CHECKING:
    from oauth_server.oauth.ratelimit import RateLimiter

__all__ = ["USERINFO_REALM", "UserinfoEndpoint"]

USERINFO_REALM = "userinfo"
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")  # RFC 6750 §2.1 b64token


class UserinfoEndpoint:
    def __init__(
        self,
        *,
        verifier: TokenVerifier,
        users: UserRepository,
        clients: ClientDirectory | None = None,
        limiter: RateLimiter | None = None,
        realm: str = USERINFO_REALM,
    ) -> None:
        self._verifier = verifier
        self._users = users
        self._clients = clients
        self._limiter = limiter
        self._realm = realm

    async def handle(self, request: OAuthRequest, *, cors: CorsGate | None = None) -> OAuthResponse:
        """``cors``: a cross-origin request's gate, checked against the access token's client
        (:mod:`oauth_server.oauth.cors`)."""
        try:
            return await self._answer(request, cors)
        except (BearerChallenge, InvalidBearerRequest, InsufficientScope, InvalidToken) as error:
            error.realm = self._realm
            raise

    async def _answer(self, request: OAuthRequest, cors: CorsGate | None) -> OAuthResponse:
        token = self._token(request)
        limiter = self._limiter
        if limiter is not None and limiter.bearer_lockouts:
            try:
                limiter.before_bearer(request.client_ip)
            except TooManyRequests as limited:
                raise self._challenging(limited) from None
        try:
            claims = await self._verifier.verify(token)
            if "openid" not in claims.scope:
                raise InsufficientScope(
                    "the access token was not granted the openid scope", scope="openid"
                )
            user = await self._users.get(user_id=claims.subject)
            if user is None or user.disabled:
                raise InvalidToken("the access token's user does not exist or is disabled")
        except InvalidToken:
            if limiter is not None:
                try:
                    await limiter.bearer_failed(request.client_ip)
                except TooManyRequests as limited:
                    raise self._challenging(limited) from None
            raise
        if cors is not None:
            client = None
            if self._clients is not None and claims.client_id:
                client = await self._clients.get(claims.client_id)
            cors.admit(client)
        body = {"sub": user.user_id, **scope_claims(user, claims.scope)}
        return OAuthResponse.json(body, no_store=True)

    def _token(self, request: OAuthRequest) -> str:
        header = bearer_token(request)
        body_token: str | None = None
        if request.method == "POST" and request.content_type == "application/x-www-form-urlencoded":
            body_token = parse_form(request.body).get("access_token")
        if header is not None and body_token is not None:
            raise InvalidBearerRequest("send the access token in one place, not two")
        if body_token is not None:
            if len(body_token) > MAX_TOKEN_LENGTH:
                raise InvalidToken("the access token is too long")
            if _B64TOKEN.fullmatch(body_token) is None:
                raise InvalidBearerRequest("the access token is malformed")
            return body_token
        if header is None:
            raise BearerChallenge("an access token is required")
        return header

    def _challenging(self, limited: TooManyRequests) -> TooManyRequests:
        limited.challenge = BearerChallenge(realm=self._realm).headers()["WWW-Authenticate"]
        return limited
