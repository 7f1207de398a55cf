"""The token endpoint (RFC 6749 §3.2, §5)."""

from __future__ import annotations

from collections.abc import Mapping

from oauth_server.audit import NO_AUDIT, AuditRecorder
from oauth_server.errors import InvalidRequest, UnauthorizedClient, UnsupportedGrantType
from oauth_server.oauth.client_auth import AuthenticatedClient, ClientAuthenticator
from oauth_server.oauth.clients import PUBLIC_CLIENT_GRANT_TYPES
from oauth_server.oauth.cors import CorsGate
from oauth_server.oauth.grants import Grant
from oauth_server.oauth.http import OAuthRequest, OAuthResponse, error_code
from oauth_server.oauth.params import parse_body
from oauth_server.oauth.ratelimit import RateLimiter
from oauth_server.oauth.scopes import parse_scope
from oauth_server.oauth.tokens.issue import TokenService, TokenSet
from oauth_server.observer import NO_OBSERVER, Observer

__all__ = ["TokenEndpoint"]


class TokenEndpoint:
    """``audit_issued`` records a ``token_issued`` event per token: off by default, as the
    token endpoint is the hot path (the README gives its measured cost)."""

    def __init__(
        self,
        *,
        authenticator: ClientAuthenticator,
        grants: Mapping[str, Grant],
        tokens: TokenService,
        limiter: RateLimiter | None = None,
        audit: AuditRecorder = NO_AUDIT,
        audit_issued: bool = False,
        observer: Observer = NO_OBSERVER,
    ) -> None:
        self._authenticator = authenticator
        self._grants = dict(grants)
        self._tokens = tokens
        self._limiter = limiter
        self._audit = audit
        self._audit_issued = audit_issued
        self._observer = observer

    @property
    def grant_types(self) -> list[str]:
        return sorted(self._grants)

    async def handle(self, request: OAuthRequest, *, cors: CorsGate | None = None) -> OAuthResponse:
        """``cors``: a cross-origin request's gate, passed once the client is known
        (:mod:`oauth_server.oauth.cors`)."""
        try:
            return await self.exchange(request, cors=cors)
        except Exception as exc:
            # The client id only once it authenticated (request.notes): an unauthenticated
            # request's claim is not counted under any client's name.
            self._observer.token_failed(error_code(exc), request.notes.client_id)
            raise

    async def exchange(
        self, request: OAuthRequest, *, cors: CorsGate | None = None
    ) -> OAuthResponse:
        # The seed README posts JSON; RFC 6749 §3.2 clients post a form. Both are accepted.
        params = parse_body(request, allow_json=True)
        grant = self.select_grant(params)
        # `none` (a public client's client_id alone) only for the grants public clients have.
        client = await self._authenticator.authenticate(
            request, params, allow_none=grant.grant_type in PUBLIC_CLIENT_GRANT_TYPES
        )
        if cors is not None:
            cors.admit(client.client)
        if self._limiter is not None:
            await self._limiter.token_requested(client.client.client_id)
        self.check_grant_allowed(client, grant)
        decision = await grant.validate(client=client, params=params)
        tokens = await self._tokens.issue(decision)
        self._observer.token_issued(grant.grant_type, client.client.client_id)
        if decision.user is not None:
            request.notes.user_id = decision.user.user_id
        if self._audit_issued:
            self.record_issued(request, client, tokens)
        return self.token_response(tokens, requested_scope=params.get("scope"))

    def record_issued(
        self, request: OAuthRequest, client: AuthenticatedClient, tokens: TokenSet
    ) -> None:
        token = tokens.access
        self._audit.record(
            "token_issued",
            client_id=client.client.client_id,
            token_id=token.token_id,
            token_type=token.token_format,
            scope=" ".join(token.scope),
            ip=request.client_ip,
        )

    def select_grant(self, params: Mapping[str, str]) -> Grant:
        grant_type = params.get("grant_type")
        if grant_type is None:
            raise InvalidRequest("the grant_type parameter is required")
        grant = self._grants.get(grant_type)
        if grant is None:
            raise UnsupportedGrantType(f"unsupported grant_type: {grant_type[:64]}")
        return grant

    @staticmethod
    def check_grant_allowed(client: AuthenticatedClient, grant: Grant) -> None:
        if grant.grant_type not in client.client.grant_types:
            raise UnauthorizedClient(f"this client may not use the {grant.grant_type} grant")

    @staticmethod
    def token_response(tokens: TokenSet, *, requested_scope: str | None) -> OAuthResponse:
        # §5.1: token_type, expires_in, access_token; scope is REQUIRED when the granted scope
        # differs from the requested one, and sent only then (so the seed's answer is unchanged).
        token = tokens.access
        body: dict[str, object] = {
            "token_type": token.token_type,
            "expires_in": token.expires_in,
            "access_token": token.access_token,
        }
        if set(token.scope) != set(parse_scope(requested_scope)):
            body["scope"] = " ".join(token.scope)
        if tokens.refresh_token is not None:
            body["refresh_token"] = tokens.refresh_token
        if tokens.id_token is not None:
            body["id_token"] = tokens.id_token
        return OAuthResponse.json(body, no_store=True)
