"""The client credentials grant (RFC 6749 §4.4): a confidential client acting for itself."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from oauth_server.oauth.client_auth import AuthenticatedClient
from oauth_server.oauth.resources import resolve_audience
from oauth_server.oauth.scopes import USER_SCOPES, resolve_scope
from oauth_server.oauth.tokens.issue import Authorization

__all__ = ["ClientCredentialsGrant"]


class ClientCredentialsGrant:
    grant_type: Final = "client_credentials"

    def __init__(self, *, default_resource: str) -> None:
        self._default_resource = default_resource

    async def validate(
        self, *, client: AuthenticatedClient, params: Mapping[str, str]
    ) -> Authorization:
        # §4.4.2: only grant_type and an optional scope. Authentication already proved the
        # client confidential (OAuth 2.1 §4.2: this grant is for confidential clients only).
        registered = client.client
        allowed, default = registered.scopes, registered.default_scopes
        if not USER_SCOPES.isdisjoint(allowed):
            # A client that also signs people in: no user here, so no OpenID Connect scope
            # (`openid` is invalid_scope, as for any client that may not have it).
            allowed = allowed - USER_SCOPES
            default = tuple(scope for scope in default if scope not in USER_SCOPES)
        scope = resolve_scope(params.get("scope"), allowed=allowed, default=default)
        audience = resolve_audience(
            params.get("resource"), client=registered, default=self._default_resource
        )
        # §4.4.3: no refresh token; the subject is the client itself (RFC 9068 §2.2).
        return Authorization(
            client=registered, subject=registered.client_id, scope=scope, audience=audience
        )
