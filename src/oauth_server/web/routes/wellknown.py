"""Discovery: RFC 8414 metadata (also served as OpenID Provider metadata), the JWKS, RFC 9728
protected-resource metadata."""

from __future__ import annotations

from oauth_server.oauth.endpoints.metadata import JWKS_PATH, PROTECTED_RESOURCE_PATH
from oauth_server.oauth.http import Headers, OAuthResponse
from oauth_server.web.api import Api, Call, Doc

__all__ = ["register"]

# Public documents that change rarely; caches may keep them for a while. The key publish lead
# (OAUTH_SERVER_KEY_PUBLISH_LEAD, default 15 min) is longer than this, so a cached JWKS always
# knows a key before it signs.
# Public, credential-free documents: any origin may read them (browser clients discover the
# server and fetch keys with them). CORS stays off everywhere else.
_PUBLIC = Headers.of(
    {
        "Content-Type": "application/json",
        "Cache-Control": "public, max-age=300",
        "Access-Control-Allow-Origin": "*",
    }
)


def _document(body: bytes) -> OAuthResponse:
    return OAuthResponse(status=200, body=body, headers=_PUBLIC)


def register(api: Api) -> None:
    @api.route(
        "/.well-known/oauth-authorization-server",
        methods=["GET"],
        doc=Doc(
            summary="Authorization server metadata (RFC 8414)",
            tags=["discovery"],
            responses={200: ("Metadata", None)},
        ),
    )
    async def authorization_server(call: Call) -> OAuthResponse:
        return _document(call.services.as_metadata)

    @api.route(
        "/.well-known/openid-configuration",
        methods=["GET"],
        doc=Doc(
            summary="OpenID Provider metadata (OpenID Connect Discovery 1.0 §4)",
            description="The same document as `/.well-known/oauth-authorization-server`.",
            tags=["discovery"],
            responses={200: ("Metadata", None)},
        ),
    )
    async def openid_configuration(call: Call) -> OAuthResponse:
        return _document(call.services.as_metadata)

    @api.route(
        JWKS_PATH,
        methods=["GET"],
        doc=Doc(
            summary="JSON Web Key Set: the public keys that sign access tokens",
            tags=["discovery"],
            responses={200: ("JWK Set (RFC 7517)", None)},
        ),
    )
    async def jwks(call: Call) -> OAuthResponse:
        services = call.services
        return _document(services.keys.ring.jwks(services.clock.now()))

    @api.route(
        PROTECTED_RESOURCE_PATH,
        methods=["GET"],
        doc=Doc(
            summary="Protected resource metadata of the restaurants API (RFC 9728)",
            tags=["discovery"],
            responses={200: ("Metadata", None)},
        ),
    )
    async def protected_resource(call: Call) -> OAuthResponse:
        return _document(call.services.prm_metadata)
