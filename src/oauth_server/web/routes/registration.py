"""Dynamic client registration (RFC 7591) and management (RFC 7592): thin adapters. Declared
only when ``OAUTH_SERVER_REGISTRATION`` is not ``off``; otherwise the paths are unknown (404)."""

from __future__ import annotations

from oauth_server.errors import NotFound
from oauth_server.oauth.endpoints.register import REGISTRATION_PATH, RegistrationEndpoint
from oauth_server.oauth.http import OAuthResponse
from oauth_server.web.api import Api, Call, Doc
from oauth_server.web.schemas import ClientInformation, ClientMetadataRequest, ErrorBody

__all__ = ["register"]

_ERRORS = {
    401: (
        "invalid_token: the initial or registration access token is missing, invalid, "
        "expired, revoked or used up (`WWW-Authenticate: Bearer`)",
        ErrorBody,
    ),
    413: ("Request body too large", ErrorBody),
    429: ("too_many_requests: the address's registration budget is spent", ErrorBody),
    503: ("Storage temporarily unavailable", ErrorBody),
}
_METADATA_ERRORS = {
    400: (
        "invalid_redirect_uri, invalid_client_metadata, invalid_software_statement, "
        "unapproved_software_statement (RFC 7591 §3.2.2)",
        ErrorBody,
    ),
    **_ERRORS,
}
_CLIENT_ID = {"name": "client_id", "in": "path", "required": True, "schema": {"type": "string"}}
_TOKEN = "Authorization: Bearer with the registration access token of this client."


def _endpoint(call: Call) -> RegistrationEndpoint:
    endpoint = call.services.registration
    if endpoint is None:
        raise NotFound("no such endpoint")
    return endpoint


def register(api: Api) -> None:
    @api.route(
        REGISTRATION_PATH,
        methods=["POST"],
        doc=Doc(
            summary="Client registration (RFC 7591 §3)",
            tags=["registration"],
            description=(
                "Registers a client from its metadata (JSON). Needs `Authorization: Bearer` "
                "with an initial access token unless registration is open. The response holds "
                "the client secret and the registration access token, shown only here."
            ),
            request_body={"application/json": ClientMetadataRequest},
            responses={201: ("Registered", ClientInformation), **_METADATA_ERRORS},
        ),
    )
    async def register_client(call: Call) -> OAuthResponse:
        return await _endpoint(call).register(call.request)

    path = f"{REGISTRATION_PATH}/{{client_id}}"

    @api.route(
        path,
        methods=["GET"],
        doc=Doc(
            summary="Read a client's registration (RFC 7592 §2.1)",
            tags=["registration"],
            description=_TOKEN,
            parameters=[_CLIENT_ID],
            responses={200: ("The client's metadata", ClientInformation), **_ERRORS},
        ),
    )
    async def read_client(call: Call) -> OAuthResponse:
        return await _endpoint(call).read(call.request, call.path_params["client_id"])

    @api.route(
        path,
        methods=["PUT"],
        doc=Doc(
            summary="Replace a client's metadata (RFC 7592 §2.2)",
            tags=["registration"],
            description=_TOKEN + " Omitted members are removed; `client_id` is required.",
            parameters=[_CLIENT_ID],
            request_body={"application/json": ClientMetadataRequest},
            responses={200: ("The updated metadata", ClientInformation), **_METADATA_ERRORS},
        ),
    )
    async def update_client(call: Call) -> OAuthResponse:
        return await _endpoint(call).update(call.request, call.path_params["client_id"])

    @api.route(
        path,
        methods=["DELETE"],
        doc=Doc(
            summary="Deregister a client (RFC 7592 §2.3)",
            tags=["registration"],
            description=_TOKEN + " Deletes the client and voids every token issued to it.",
            parameters=[_CLIENT_ID],
            responses={204: ("Deleted", None), **_ERRORS},
        ),
    )
    async def delete_client(call: Call) -> OAuthResponse:
        return await _endpoint(call).delete(call.request, call.path_params["client_id"])
