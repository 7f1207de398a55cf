"""OAuth endpoints: thin adapters from HTTP to the protocol core."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from oauth_server.oauth.cors import VARY_ORIGIN, CorsGate, preflight, request_origin, web_origin
from oauth_server.oauth.http import OAuthResponse
from oauth_server.web.adapters import error_response
from oauth_server.web.api import Api, Call, Doc
from oauth_server.web.schemas import (
    ErrorBody,
    IntrospectionRequest,
    IntrospectionResponse,
    RevocationRequest,
    TokenRequest,
    TokenResponse,
)

__all__ = ["register"]

_COMMON_ERRORS = {
    413: ("Request body too large", ErrorBody),
    429: (
        "too_many_requests: too many failed client authentications for the client id from "
        "this address, for the client id, or from the address, or too many requests from the "
        "client (`Retry-After`)",
        ErrorBody,
    ),
    503: ("Storage temporarily unavailable", ErrorBody),
}

_TOKEN_DOC = Doc(
    summary="Token endpoint (RFC 6749 §3.2)",
    tags=["oauth"],
    description=(
        "Issues access tokens. Clients authenticate with HTTP Basic (`client_secret_basic`) or "
        "`client_id`/`client_secret` in the body (`client_secret_post`). The body is "
        "`application/x-www-form-urlencoded` (RFC 6749) or, for compatibility with the seed "
        "README, a JSON object with the same members. Responses carry `Cache-Control: no-store`."
    ),
    request_body={
        "application/x-www-form-urlencoded": TokenRequest,
        "application/json": TokenRequest,
    },
    responses={
        200: ("Access token issued", TokenResponse),
        400: (
            "invalid_request, invalid_scope, invalid_target, unauthorized_client, "
            "unsupported_grant_type",
            ErrorBody,
        ),
        401: ("invalid_client", ErrorBody),
        **_COMMON_ERRORS,
    },
    client_auth=True,
)
_INTROSPECT_DOC = Doc(
    summary="Token introspection (RFC 7662)",
    tags=["oauth"],
    description="An authenticated client learns whether a token issued to it, or meant for a "
    'resource it serves, is active. Anything else is `{"active": false}`.',
    request_body={"application/x-www-form-urlencoded": IntrospectionRequest},
    responses={
        200: ("Token state", IntrospectionResponse),
        400: ("invalid_request", ErrorBody),
        401: ("invalid_client", ErrorBody),
        **_COMMON_ERRORS,
    },
    client_auth=True,
)
_REVOKE_DOC = Doc(
    summary="Token revocation (RFC 7009)",
    tags=["oauth"],
    description="Revokes a token issued to the authenticated client. Answers 200 also for "
    "unknown, invalid or already revoked tokens; 503 if the revocation could not be recorded.",
    request_body={"application/x-www-form-urlencoded": RevocationRequest},
    responses={
        200: ("Revoked, or nothing to revoke", None),
        400: ("invalid_request", ErrorBody),
        401: ("invalid_client", ErrorBody),
        **_COMMON_ERRORS,
    },
    client_auth=True,
)


_USERINFO_DOC = Doc(
    summary="UserInfo endpoint (OpenID Connect Core §5.3)",
    tags=["oauth"],
    description=(
        "Claims about the signed-in user: `sub` and the claims of the granted `profile` and "
        "`email` scopes. The access token (scope `openid`, issued for a user) goes in the "
        "`Authorization: Bearer` header or, on POST, as `access_token` in a form body "
        "(RFC 6750 §2.2). Responses carry `Cache-Control: no-store`."
    ),
    responses={
        200: ("The user's claims", None),
        400: ("invalid_request: malformed credentials, or a token sent twice", ErrorBody),
        401: ("Missing or invalid token, or the user is gone or disabled", ErrorBody),
        403: ("insufficient_scope: the token lacks `openid`", ErrorBody),
        **_COMMON_ERRORS,
    },
)


Endpoint = Callable[..., Awaitable[OAuthResponse]]


async def _with_cors(call: Call, handle: Endpoint) -> OAuthResponse:
    """Client-based CORS (``oauth/cors.py``): a cross-origin request runs with a gate the
    endpoint admits once it knows the client; the answer, success or error, carries
    ``Access-Control-Allow-Origin`` only if it was admitted."""
    request = call.request
    origin = request_origin(request, web_origin(call.services.settings.public_issuer))
    if origin is None:
        return (await handle(request)).with_headers(VARY_ORIGIN)
    gate = CorsGate(origin)
    try:
        response = await handle(request, cors=gate)
    except Exception as exc:
        response = error_response(exc, request.method, request.path)
    if gate.admitted:
        response = response.with_headers(*gate.headers())
    return response.with_headers(VARY_ORIGIN)


def _preflight(api: Api, path: str, methods: tuple[str, ...]) -> None:
    async def preflight_request(call: Call) -> OAuthResponse:
        return preflight(call.request, methods)

    api.route(path, methods=["OPTIONS"])(preflight_request)


def register(api: Api) -> None:
    @api.route("/oauth/userinfo", methods=["GET", "POST"], doc=_USERINFO_DOC)
    async def userinfo(call: Call) -> OAuthResponse:
        return await _with_cors(call, call.services.userinfo.handle)

    @api.route("/oauth/token", methods=["POST"], doc=_TOKEN_DOC)
    async def token(call: Call) -> OAuthResponse:
        return await _with_cors(call, call.services.token_endpoint.handle)

    @api.route("/oauth/introspect", methods=["POST"], doc=_INTROSPECT_DOC)
    async def introspect(call: Call) -> OAuthResponse:
        return await call.services.introspection.handle(call.request)

    @api.route("/oauth/revoke", methods=["POST"], doc=_REVOKE_DOC)
    async def revoke(call: Call) -> OAuthResponse:
        return await _with_cors(call, call.services.revocation.handle)

    # CORS preflights (oauth/cors.py rule 3) for the endpoints browser apps call.
    _preflight(api, "/oauth/userinfo", ("GET", "POST"))
    _preflight(api, "/oauth/token", ("POST",))
    _preflight(api, "/oauth/revoke", ("POST",))
