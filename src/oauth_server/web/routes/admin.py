"""The admin REST API under ``/admin/api``: a thin adapter over :mod:`oauth_server.admin`.

Each handler authenticates the bearer token (scope ``admin``, RFC 6750), asks the core who the
actor is (which re-reads the client's registration and, for a user's token, the user's admin
flag), parses and validates the body, calls one core method and renders the result as JSON
with ``Cache-Control: no-store`` (a created client's secret is in one of these responses).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar, get_args

import orjson
from pydantic import BaseModel, ValidationError

from oauth_server.admin import Actor, Page
from oauth_server.audit import AuditKind
from oauth_server.errors import InvalidFields, InvalidRequest, NotFound
from oauth_server.oauth.clients import NewClient
from oauth_server.oauth.http import OAuthResponse
from oauth_server.oauth.params import parse_query
from oauth_server.oauth.scopes import ADMIN_SCOPE
from oauth_server.storage.models import AuditRecord, Client, User, UserProfileChanges
from oauth_server.web.admin_schemas import (
    AdminError,
    AuditPage,
    ClientCreate,
    ClientPage,
    ClientPatch,
    ClientView,
    ClientWithSecret,
    ConsentList,
    KeyList,
    KeyRotate,
    KeyRotated,
    PasswordReset,
    SessionsEnded,
    UserCreate,
    UserPage,
    UserPatch,
    UserTokensRevoked,
    UserView,
)
from oauth_server.web.api import Api, Call, Doc

__all__ = ["PREFIX", "register"]

PREFIX = "/admin/api"
_SCOPES = frozenset({ADMIN_SCOPE})
DEFAULT_PAGE = 50
MAX_PAGE = 200
_KINDS = frozenset(get_args(AuditKind))
# What a path parameter may be before anything is looked up: the syntax of the identifiers
# (oauth.clients, accounts, key thumbprints). Anything else names nothing: 404, no query.
_CLIENT_ID = re.compile(r"[A-Za-z0-9._~-]{1,128}")
_USER_ID = re.compile(r"[0-9a-f]{32}")
_KID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_FILTER = re.compile(r"[\x20-\x7e]{1,256}")

M = TypeVar("M", bound=BaseModel)

_AUTH_ERRORS: dict[int, tuple[str, type[BaseModel] | None]] = {
    400: ("Malformed request, JSON or Bearer credentials", AdminError),
    401: ("No, invalid or expired token (`WWW-Authenticate: Bearer`)", AdminError),
    403: (
        "insufficient_scope: no `admin` scope, not an admin client, or the token's user is "
        "not (or no longer) an administrator",
        AdminError,
    ),
    429: ("Too many invalid access tokens from this address", AdminError),
    503: ("Storage temporarily unavailable (`Retry-After`)", AdminError),
}
_NOT_FOUND = {404: ("No such resource", AdminError)}
_BODY_ERRORS = {
    **_AUTH_ERRORS,
    413: ("Request body too large", AdminError),
    422: ("Invalid fields: `fields` names each with the reason", AdminError),
}
_QUERY_ERRORS = {**_AUTH_ERRORS, 422: ("Invalid query parameter (named in `fields`)", AdminError)}


def _param(name: str, description: str, **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path" if name.endswith("_id") or name == "kid" else "query",
        "required": name.endswith("_id") or name == "kid",
        "description": description,
        "schema": {"type": "string", **schema},
    }


_CLIENT_PARAM = _param("client_id", "The client's id", pattern=r"^[A-Za-z0-9._~-]{1,128}$")
_USER_PARAM = _param("user_id", "The user's id (its `sub`)", pattern=r"^[0-9a-f]{32}$")
_KID_PARAM = _param("kid", "The key's id (JWK thumbprint)")
_PAGE_PARAMS = [
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": DEFAULT_PAGE},
    },
    _param("cursor", "`next_cursor` of the previous page"),
]
_SEARCH = _param("search", "Case-insensitive substring of the id or name", maxLength=256)


def _json(data: Any, status: int = 200) -> OAuthResponse:
    return OAuthResponse.json(data, status=status, no_store=True)


async def _actor(call: Call) -> Actor:
    services = call.services
    claims = await services.admin_guard.authenticate(call.request, any_of=_SCOPES, required=True)
    assert claims is not None  # required=True: no token is a 401
    return await services.admin.actor(claims)


def _body(call: Call, model: type[M], *, optional: bool = False) -> M:
    request = call.request
    if optional and not request.body:
        return model()
    if request.content_type != "application/json":
        raise InvalidRequest("the request body must be application/json")
    try:
        return model.model_validate_json(request.body)
    except ValidationError as exc:
        errors = exc.errors()
        if any(error["type"] == "json_invalid" for error in errors):
            raise InvalidRequest("the request body is not valid JSON") from None
        fields: dict[str, str] = {}
        for error in errors:
            where = ".".join(str(part) for part in error["loc"]) or "body"
            fields.setdefault(where, error["msg"])
        raise InvalidFields(fields) from None


def _query(call: Call) -> dict[str, str]:
    return parse_query(call.request.query)


def _limit(params: dict[str, str]) -> int:
    value = params.get("limit")
    if value is None:
        return DEFAULT_PAGE
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_PAGE:
        raise InvalidFields({"limit": f"an integer from 1 to {MAX_PAGE}"})
    return int(value)


def _filter(params: dict[str, str], name: str) -> str | None:
    value = params.get(name)
    if value is not None and _FILTER.fullmatch(value) is None:
        raise InvalidFields({name: "1-256 printable ASCII characters"})
    return value


def _seconds(params: dict[str, str], name: str) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 12:
        raise InvalidFields({name: "seconds since the epoch (a non-negative integer)"})
    return int(value) * 1000


def _path(call: Call, name: str, syntax: re.Pattern[str]) -> str:
    value = call.path_params[name]
    if syntax.fullmatch(value) is None:
        raise NotFound("no such resource")
    return value


def client_view(client: Client) -> dict[str, Any]:
    """A client as the admin API shows it: everything but the secret's hash."""
    return {
        "client_id": client.client_id,
        "name": client.name,
        "client_type": client.client_type,
        "grant_types": sorted(client.grant_types),
        "scopes": sorted(client.scopes),
        "default_scopes": list(client.default_scopes),
        "token_format": client.token_format,
        "resources": list(client.resources),
        "introspect": list(client.introspect),
        "auth_methods": sorted(client.auth_methods),
        "redirect_uris": list(client.redirect_uris),
        "post_logout_redirect_uris": list(client.post_logout_redirect_uris),
        "require_consent": client.require_consent,
        "require_pkce": client.require_pkce,
        "admin": ADMIN_SCOPE in client.scopes,
        "created_at": client.created_at,
        "updated_at": client.updated_at,
    }


def _with_secret(new: NewClient) -> dict[str, Any]:
    return {**client_view(new.client), "client_secret": new.secret}


def user_view(user: User) -> dict[str, Any]:
    """A user as the admin API shows it: never the password hash."""
    return {
        "user_id": user.user_id,
        "username": user.username,
        "name": user.name,
        "given_name": user.given_name,
        "family_name": user.family_name,
        "preferred_username": user.preferred_username,
        "email": user.email,
        "email_verified": user.email_verified,
        "disabled": user.disabled,
        "is_admin": user.is_admin,
        "created_at": user.created_at,
        "updated_at": user.updated_at,
    }


def _event_view(record: AuditRecord) -> dict[str, Any]:
    return {
        "at_ms": record.at_ms,
        "kind": record.kind,
        "chain_id": record.chain_id,
        "seq": record.seq,
        "data": orjson.loads(record.data),
    }


T = TypeVar("T")


def _page(page: Page[T], view: Callable[[T], dict[str, Any]]) -> OAuthResponse:
    return _json({"items": [view(item) for item in page.items], "next_cursor": page.next_cursor})


def register(api: Api) -> None:
    def doc(summary: str, tag: str, **kwargs: Any) -> Doc:
        return Doc(summary=summary, tags=[f"admin: {tag}"], scopes=[ADMIN_SCOPE], **kwargs)

    # --- Clients ----------------------------------------------------------------------------

    @api.route(
        f"{PREFIX}/clients",
        methods=["GET"],
        doc=doc(
            "List clients, a page at a time, ordered by id",
            "clients",
            parameters=[*_PAGE_PARAMS, _SEARCH],
            responses={200: ("A page of clients", ClientPage), **_QUERY_ERRORS},
        ),
    )
    async def admin_list_clients(call: Call) -> OAuthResponse:
        await _actor(call)
        params = _query(call)
        cursor = params.get("cursor")
        if cursor is not None and _CLIENT_ID.fullmatch(cursor) is None:
            raise InvalidFields({"cursor": "not a cursor this server returned"})
        page = await call.services.admin.list_clients(
            limit=_limit(params), cursor=cursor, search=_filter(params, "search")
        )
        return _page(page, client_view)

    @api.route(
        f"{PREFIX}/clients",
        methods=["POST"],
        doc=doc(
            "Register a client (its secret is in this response only)",
            "clients",
            request_body={"application/json": ClientCreate},
            responses={
                201: ("Created; `client_secret` is shown this once", ClientWithSecret),
                409: ("A client of that id exists", AdminError),
                **_BODY_ERRORS,
            },
        ),
    )
    async def admin_create_client(call: Call) -> OAuthResponse:
        actor = await _actor(call)
        body = _body(call, ClientCreate)
        created = await call.services.admin.create_client(
            actor,
            client_id=body.client_id,
            name=body.name,
            client_type=body.client_type,
            grant_types=body.grant_types,
            scopes=body.scopes,
            default_scopes=body.default_scopes,
            token_format=body.token_format,
            resources=body.resources,
            introspect=body.introspect,
            auth_methods=body.auth_methods,
            redirect_uris=body.redirect_uris,
            post_logout_redirect_uris=body.post_logout_redirect_uris,
            require_consent=body.require_consent,
            require_pkce=body.require_pkce,
            admin=body.admin,
        )
        return _json(_with_secret(created), 201)

    @api.route(
        f"{PREFIX}/clients/{{client_id}}",
        methods=["GET"],
        doc=doc(
            "Get a client",
            "clients",
            parameters=[_CLIENT_PARAM],
            responses={200: ("The client", ClientView), **_NOT_FOUND, **_AUTH_ERRORS},
        ),
    )
    async def admin_get_client(call: Call) -> OAuthResponse:
        await _actor(call)
        client_id = _path(call, "client_id", _CLIENT_ID)
        return _json(client_view(await call.services.admin.get_client(client_id)))

    @api.route(
        f"{PREFIX}/clients/{{client_id}}",
        methods=["PATCH"],
        doc=doc(
            "Change a client's metadata (what is left out stays)",
            "clients",
            parameters=[_CLIENT_PARAM],
            request_body={"application/json": ClientPatch},
            responses={200: ("The updated client", ClientView), **_NOT_FOUND, **_BODY_ERRORS},
        ),
    )
    async def admin_update_client(call: Call) -> OAuthResponse:
        actor = await _actor(call)
        client_id = _path(call, "client_id", _CLIENT_ID)
        body = _body(call, ClientPatch)
        updated = await call.services.admin.update_client(
            actor,
            client_id,
            name=body.name,
            scopes=body.scopes,
            default_scopes=body.default_scopes,
            redirect_uris=body.redirect_uris,
            post_logout_redirect_uris=body.post_logout_redirect_uris,
            require_consent=body.require_consent,
        )
        return _json(client_view(updated))

    @api.route(
        f"{PREFIX}/clients/{{client_id}}",
        methods=["DELETE"],
        doc=doc(
            "Delete a client and void every token issued to it",
            "clients",
            parameters=[_CLIENT_PARAM],
            responses={204: ("Deleted", None), **_NOT_FOUND, **_AUTH_ERRORS},
        ),
    )
    async def admin_delete_client(call: Call) -> OAuthResponse:
        actor = await _actor(call)
        await call.services.admin.delete_client(actor, _path(call, "client_id", _CLIENT_ID))
        return OAuthResponse.empty(204)

    @api.route(
        f"{PREFIX}/clients/{{client_id}}/secret",
        methods=["POST"],
        doc=doc(
            "Rotate a client's secret (the new one is in this response only)",
            "clients",
            parameters=[_CLIENT_PARAM],
            responses={
                200: ("The client and its new secret", ClientWithSecret),
                409: ("A public client has no secret", AdminError),
                **_NOT_FOUND,
                **_AUTH_ERRORS,
            },
        ),
    )
    async def admin_rotate_client_secret(call: Call) -> OAuthResponse:
        actor = await _actor(call)
        client_id = _path(call, "client_id", _CLIENT_ID)
        rotated = await call.services.admin.rotate_client_secret(actor, client_id)
        return _json(_with_secret(rotated))

    @api.route(
        f"{PREFIX}/clients/{{client_id}}/revoke-tokens",
        methods=["POST"],
        doc=doc(
            "Void every access token issued to the client so far",
            "tokens",
            parameters=[_CLIENT_PARAM],
            responses={204: ("Revoked", None), **_NOT_FOUND, **_AUTH_ERRORS},
        ),
    )
    async def admin_revoke_client_tokens(call: Call) -> OAuthResponse:
        actor = await _actor(call)
        client_id = _path(call, "client_id", _CLIENT_ID)
        await call.services.admin.revoke_client_tokens(actor, client_id)
        return OAuthResponse.empty(204)

    # --- Users ------------------------------------------------------------------------------

    @api.route(
        f"{PREFIX}/users",
        methods=["GET"],
        doc=doc(
            "List users, a page at a time, ordered by username",
            "users",
            parameters=[
                *_PAGE_PARAMS,
                {**_SEARCH, "description": "Case-insensitive substring of username, name or email"},
            ],
            responses={200: ("A page of users", UserPage), **_QUERY_ERRORS},
        ),
    )
    async def admin_list_users(call: Call) -> OAuthResponse:
        await _actor(call)
        params = _query(call)
        page = await call.services.admin.list_users(
            limit=_limit(params),
            cursor=_filter(params, "cursor"),
            search=_filter(params, "search"),
        )
        return _page(page, user_view)

    @api.route(
        f"{PREFIX}/users",
        methods=["POST"],
        doc=doc(
            "Create a user",
            "users",
            request_body={"application/json": UserCreate},
            responses={
                201: ("Created", UserView),
                409: ("The username is taken", AdminError),
                **_BODY_ERRORS,
            },
        ),
    )
    async def admin_create_user(call: Call) -> OAuthResponse:
        actor = await _actor(call)
        body = _body(call, UserCreate)
        user = await call.services.admin.create_user(
            actor,
            username=body.username,
            password=body.password,
            name=body.name,
            given_name=body.given_name,
            family_name=body.family_name,
            preferred_username=body.preferred_username,
            email=body.email,
            email_verified=body.email_verified,
            is_admin=body.is_admin,
        )
        return _json(user_view(user), 201)

    @api.route(
        f"{PREFIX}/users/{{user_id}}",
        methods=["GET"],
        doc=doc(
            "Get a user",
            "users",
            parameters=[_USER_PARAM],
            responses={200: ("The user", UserView), **_NOT_FOUND, **_AUTH_ERRORS},
        ),
    )
    async def admin_get_user(call: Call) -> OAuthResponse:
        await _actor(call)
        user = await call.services.admin.get_user(_path(call, "user_id", _USER_ID))
        return _json(user_view(user))

    @api.route(
        f"{PREFIX}/users/{{user_id}}",
        methods=["PATCH"],
        doc=doc(
            "Change a user's profile claims",
            "users",
            parameters=[_USER_PARAM],
            request_body={"application/json": UserPatch},
            responses={200: ("The updated user", UserView), **_NOT_FOUND, **_BODY_ERRORS},
        ),
    )
    async def admin_update_user(call: Call) -> OAuthResponse:
        actor = await _actor(call)
        user_id = _path(call, "user_id", _USER_ID)
        body = _body(call, UserPatch)
        changes = UserProfileChanges(**body.model_dump())
        return _json(user_view(await call.services.admin.update_user(actor, user_id, changes)))

    @api.route(
        f"{PREFIX}/users/{{user_id}}",
        methods=["DELETE"],
        doc=doc(
            "Delete a user (its sessions end, its refresh tokens are revoked)",
            "users",
            parameters=[_USER_PARAM],
            responses={204: ("Deleted", None), **_NOT_FOUND, **_AUTH_ERRORS},
        ),
    )
    async def admin_delete_user(call: Call) -> OAuthResponse:
        actor = await _actor(call)
        await call.services.admin.delete_user(actor, _path(call, "user_id", _USER_ID))
        return OAuthResponse.empty(204)

    def flag_route(path: str, method: str, summary: str, change: str, value: bool) -> None:
        async def handler(call: Call) -> OAuthResponse:
            actor = await _actor(call)
            user_id = _path(call, "user_id", _USER_ID)
            admin = call.services.admin
            if change == "disabled":
                user = await admin.set_disabled(actor, user_id, value)
            else:
                user = await admin.set_admin(actor, user_id, value)
            return _json(user_view(user))

        handler.__name__ = f"admin_{change}_{'on' if value else 'off'}"
        api.route(
            f"{PREFIX}/users/{{user_id}}/{path}",
            methods=[method],
            doc=doc(
                summary,
                "users",
                parameters=[_USER_PARAM],
                responses={200: ("The user", UserView), **_NOT_FOUND, **_AUTH_ERRORS},
            ),
        )(handler)

    flag_route(
        "disable", "POST", "Disable a user (ends its sessions and refresh tokens)", "disabled", True
    )
    flag_route("enable", "POST", "Enable a user", "disabled", False)
    flag_route("admin", "PUT", "Make the user an administrator", "admin", True)
    flag_route(
        "admin", "DELETE", "Withdraw the admin flag (counts from the next request)", "admin", False
    )

    @api.route(
        f"{PREFIX}/users/{{user_id}}/password",
        methods=["PUT"],
        doc=doc(
            "Reset a user's password (its sessions end, its refresh tokens are revoked)",
            "users",
            parameters=[_USER_PARAM],
            request_body={"application/json": PasswordReset},
            responses={204: ("Changed", None), **_NOT_FOUND, **_BODY_ERRORS},
        ),
    )
    async def admin_reset_password(call: Call) -> OAuthResponse:
        actor = await _actor(call)
        user_id = _path(call, "user_id", _USER_ID)
        body = _body(call, PasswordReset)
        await call.services.admin.set_password(actor, user_id, body.password)
        return OAuthResponse.empty(204)

    @api.route(
        f"{PREFIX}/users/{{user_id}}/consents",
        methods=["GET"],
        doc=doc(
            "The apps the user consented to, with the scopes",
            "users",
            parameters=[_USER_PARAM],
            responses={200: ("Consents by client id", ConsentList), **_NOT_FOUND, **_AUTH_ERRORS},
        ),
    )
    async def admin_list_consents(call: Call) -> OAuthResponse:
        await _actor(call)
        consents = await call.services.admin.consents(_path(call, "user_id", _USER_ID))
        items = [
            {"client_id": c.client_id, "scopes": sorted(c.scopes), "updated_at": c.updated_at}
            for c in consents
        ]
        return _json({"items": items})

    @api.route(
        f"{PREFIX}/users/{{user_id}}/consents/{{client_id}}",
        methods=["DELETE"],
        doc=doc(
            "Forget the user's consent to an app (its scopes are asked again)",
            "users",
            parameters=[_USER_PARAM, _CLIENT_PARAM],
            responses={204: ("Revoked", None), **_NOT_FOUND, **_AUTH_ERRORS},
        ),
    )
    async def admin_revoke_consent(call: Call) -> OAuthResponse:
        actor = await _actor(call)
        user_id = _path(call, "user_id", _USER_ID)
        client_id = _path(call, "client_id", _CLIENT_ID)
        await call.services.admin.revoke_consent(actor, user_id, client_id)
        return OAuthResponse.empty(204)

    @api.route(
        f"{PREFIX}/users/{{user_id}}/sessions",
        methods=["DELETE"],
        doc=doc(
            "End every browser session of the user (sign out everywhere)",
            "users",
            parameters=[_USER_PARAM],
            responses={200: ("How many ended", SessionsEnded), **_NOT_FOUND, **_AUTH_ERRORS},
        ),
    )
    async def admin_end_sessions(call: Call) -> OAuthResponse:
        actor = await _actor(call)
        ended = await call.services.admin.end_sessions(actor, _path(call, "user_id", _USER_ID))
        return _json({"sessions_ended": ended})

    @api.route(
        f"{PREFIX}/users/{{user_id}}/revoke-tokens",
        methods=["POST"],
        doc=doc(
            "Revoke every refresh-token family of the user (and their access tokens) and end "
            "its sessions",
            "tokens",
            parameters=[_USER_PARAM],
            responses={200: ("What was revoked", UserTokensRevoked), **_NOT_FOUND, **_AUTH_ERRORS},
        ),
    )
    async def admin_revoke_user_tokens(call: Call) -> OAuthResponse:
        actor = await _actor(call)
        user_id = _path(call, "user_id", _USER_ID)
        families, sessions = await call.services.admin.revoke_user_tokens(actor, user_id)
        return _json({"refresh_families_revoked": families, "sessions_ended": sessions})

    # --- Signing keys -----------------------------------------------------------------------

    @api.route(
        f"{PREFIX}/keys",
        methods=["GET"],
        doc=doc(
            "Signing keys and their states",
            "keys",
            responses={200: ("Every stored key", KeyList), **_AUTH_ERRORS},
        ),
    )
    async def admin_list_keys(call: Call) -> OAuthResponse:
        await _actor(call)
        return _json({"items": await call.services.admin.list_keys()})

    @api.route(
        f"{PREFIX}/keys/rotate",
        methods=["POST"],
        doc=doc(
            "Publish a new signing key (the body is optional)",
            "keys",
            request_body={"application/json": KeyRotate},
            responses={201: ("The new key's id", KeyRotated), **_BODY_ERRORS},
        ),
    )
    async def admin_rotate_key(call: Call) -> OAuthResponse:
        actor = await _actor(call)
        body = _body(call, KeyRotate, optional=True)
        kid = await call.services.admin.rotate_key(actor, immediately=body.immediately)
        return _json({"kid": kid}, 201)

    @api.route(
        f"{PREFIX}/keys/{{kid}}",
        methods=["DELETE"],
        doc=doc(
            "Remove a key at once (compromise); a new key signs if it was the signing key",
            "keys",
            parameters=[_KID_PARAM],
            responses={204: ("Removed", None), **_NOT_FOUND, **_AUTH_ERRORS},
        ),
    )
    async def admin_remove_key(call: Call) -> OAuthResponse:
        actor = await _actor(call)
        await call.services.admin.remove_key(actor, _path(call, "kid", _KID))
        return OAuthResponse.empty(204)

    # --- Audit trail ------------------------------------------------------------------------

    @api.route(
        f"{PREFIX}/audit",
        methods=["GET"],
        doc=doc(
            "Audit events, newest first, a page at a time",
            "audit",
            parameters=[
                *_PAGE_PARAMS,
                _param("kind", "Comma-separated event kinds"),
                _param("client_id", "The event's `client_id` field", maxLength=256),
                _param("user_id", "The event's `user_id` field", maxLength=256),
                _param("since", "From this time on (seconds since the epoch)", pattern=r"^\d+$"),
                _param("until", "Before this time (seconds since the epoch)", pattern=r"^\d+$"),
            ],
            responses={200: ("A page of events", AuditPage), **_QUERY_ERRORS},
        ),
    )
    async def admin_audit(call: Call) -> OAuthResponse:
        await _actor(call)
        params = _query(call)
        kinds: tuple[str, ...] = ()
        if "kind" in params:
            kinds = tuple(params["kind"].split(","))
            unknown = [kind for kind in kinds if kind not in _KINDS]
            if unknown:
                raise InvalidFields({"kind": f"unknown event kind {unknown[0][:64]!r}"})
        page = await call.services.admin.audit_events(
            limit=_limit(params),
            kinds=kinds,
            client_id=_filter(params, "client_id"),
            user_id=_filter(params, "user_id"),
            since_ms=_seconds(params, "since"),
            until_ms=_seconds(params, "until"),
            cursor=_filter(params, "cursor"),
        )
        return _page(page, _event_view)
