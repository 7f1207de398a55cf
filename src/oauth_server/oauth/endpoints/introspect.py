"""Token introspection (RFC 7662)."""

from __future__ import annotations

from typing import Any

from oauth_server.errors import InvalidRequest, InvalidToken
from oauth_server.oauth.client_auth import AuthenticatedClient, ClientAuthenticator
from oauth_server.oauth.http import OAuthRequest, OAuthResponse
from oauth_server.oauth.params import parse_body
from oauth_server.oauth.ratelimit import RateLimiter
from oauth_server.oauth.tokens.verify.claims import AccessClaims, TokenVerifier
from oauth_server.observer import NO_OBSERVER, Observer

__all__ = ["IntrospectionEndpoint"]

_INACTIVE = OAuthResponse.json({"active": False}, no_store=True)


class IntrospectionEndpoint:
    """§2.1: the caller must be authorized (here: an authenticated client) so the endpoint
    cannot be used to scan for tokens. Learning about other clients' tokens is a right, not a
    default (§4: introspection reveals a token's client, scope, subject and lifetime): a client
    sees the tokens issued to it, and tokens for the audiences it is registered to introspect
    as a resource server (``clients create --introspect AUDIENCE``); for anything else —
    unknown, expired, revoked, malformed, not its business — the answer is exactly
    ``{"active": false}`` (§2.2)."""

    def __init__(
        self,
        *,
        authenticator: ClientAuthenticator,
        verifier: TokenVerifier,
        limiter: RateLimiter | None = None,
        observer: Observer = NO_OBSERVER,
    ) -> None:
        self._authenticator = authenticator
        self._verifier = verifier
        self._limiter = limiter
        self._observer = observer

    async def handle(self, request: OAuthRequest) -> OAuthResponse:
        params = parse_body(request)
        client = await self._authenticator.authenticate(request, params)
        if self._limiter is not None:
            await self._limiter.introspection_requested(client.client.client_id)
        token = params.get("token")
        if token is None:
            raise InvalidRequest("the token parameter is required")
        # token_type_hint (§2.1) is only a hint; the token's shape tells its type.
        try:
            claims = await self._verifier.verify(token)
        except InvalidToken:
            self._observer.introspected(False)
            return _INACTIVE
        if not self.may_see(client, claims):
            self._observer.introspected(False)
            return _INACTIVE
        self._observer.introspected(True)
        return OAuthResponse.json(self.describe(claims), no_store=True)

    @staticmethod
    def may_see(caller: AuthenticatedClient, claims: AccessClaims) -> bool:
        if claims.client_id == caller.client.client_id:
            return True
        return not set(claims.audience).isdisjoint(caller.client.introspect)

    @staticmethod
    def describe(claims: AccessClaims) -> dict[str, Any]:
        body: dict[str, Any] = {
            "active": True,
            "scope": claims.scope_text,
            "client_id": claims.client_id,
            "token_type": "Bearer",
            "exp": claims.expires_at,
            "iat": claims.issued_at,
            "sub": claims.subject,
            "aud": claims.audience[0] if len(claims.audience) == 1 else list(claims.audience),
            "iss": claims.issuer,
        }
        if claims.not_before is not None:
            body["nbf"] = claims.not_before
        if claims.jti is not None:
            body["jti"] = claims.jti
        return body
