"""OAuth endpoints: thin adapters from HTTP to the protocol core."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from oauth_server.web.api import Api, Doc, oauth_request, read_body, to_response
from oauth_server.web.schemas import ErrorBody, TokenRequest, TokenResponse
from oauth_server.web.state import services_of

__all__ = ["register"]

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
            "invalid_request, invalid_scope, unauthorized_client, unsupported_grant_type",
            ErrorBody,
        ),
        401: ("invalid_client", ErrorBody),
        413: ("Request body too large", ErrorBody),
        503: ("Storage temporarily unavailable", ErrorBody),
    },
    client_auth=True,
)


def register(api: Api) -> None:
    @api.route("/oauth/token", methods=["POST"], doc=_TOKEN_DOC)
    async def token(request: Request) -> Response:
        services = services_of(request)
        body = await read_body(request, services.settings.max_body_bytes)
        response = await services.token_endpoint.handle(await oauth_request(request, body=body))
        return to_response(response)
