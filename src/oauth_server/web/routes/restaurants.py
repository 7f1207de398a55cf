"""The restaurants API: the seed's two routes and the REST API beside them."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from oauth_server.cache import TTLCache
from oauth_server.errors import InvalidRequest
from oauth_server.oauth.http import Headers, OAuthResponse
from oauth_server.oauth.params import parse_query
from oauth_server.oauth.tokens.verify.claims import AccessClaims
from oauth_server.resource.restaurants import (
    ADDRESS_MAX,
    NAME_MAX,
    READ_SCOPES,
    TIME_MAX,
    WRITE_SCOPES,
    RestaurantService,
    full_view,
    public_view,
)
from oauth_server.storage.models import RestaurantChanges
from oauth_server.web.api import Api, Call, Doc
from oauth_server.web.schemas import (
    TEXT_PATTERN,
    VISIBLE_TEXT_PATTERN,
    ErrorBody,
    Message,
    RestaurantCreate,
    RestaurantFull,
    RestaurantList,
    RestaurantPage,
    RestaurantPatch,
    RestaurantView,
)

__all__ = ["register"]

_ERRORS: dict[int, tuple[str, type[BaseModel] | None]] = {
    400: ("Malformed request or id", ErrorBody),
    401: ("Missing, invalid or expired token (`WWW-Authenticate: Bearer`)", ErrorBody),
    403: ("insufficient_scope", ErrorBody),
    429: (
        "Too many invalid access tokens from this address (`Retry-After`, RFC 6585 §4)",
        ErrorBody,
    ),
    503: ("Storage temporarily unavailable (`Retry-After`)", ErrorBody),
}
_BODY_ERRORS: dict[int, tuple[str, type[BaseModel] | None]] = {
    **_ERRORS,
    413: ("Request body too large", ErrorBody),
}
_ID_PARAM = {
    "name": "restaurant_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[0-9a-fA-F]{24}$"},
    "example": "5f1a2b3c4d5e6f7a8b9c0d01",  # a demo restaurant (development seeds it)
}
# A query parameter sent with an empty value counts as omitted (OAuth 2.1 §3.1; parse_query
# applies the rule to every route), so the optional ones say they allow it.
_EMPTY_IS_OMITTED = {
    "allowEmptyValue": True,
    "description": "An empty value is the same as leaving the parameter out.",
}
_SEED_FIELDS = [
    {
        "name": name,
        "in": "query",
        "required": False,
        "schema": {"type": "string", "maxLength": size, "pattern": pattern},
        **_EMPTY_IS_OMITTED,
    }
    for name, size, pattern in (
        ("Name", NAME_MAX, VISIBLE_TEXT_PATTERN),
        ("Address", ADDRESS_MAX, VISIBLE_TEXT_PATTERN),
        ("open", TIME_MAX, TEXT_PATTERN),
        ("close", TIME_MAX, TEXT_PATTERN),
    )
]
DEFAULT_PAGE = 20
MAX_PAGE = 100


async def _claims(call: Call, *, any_of: Collection[str], required: bool) -> AccessClaims | None:
    return await call.services.guard.authenticate(call.request, any_of=any_of, required=required)


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> OAuthResponse:
    return OAuthResponse.json(data, status=status, headers=headers)


def _body(call: Call, model: type[BaseModel]) -> Any:
    if call.request.content_type != "application/json":
        raise InvalidRequest("the request body must be application/json")
    try:
        return model.model_validate_json(call.request.body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise InvalidRequest(f"{where}: {first['msg']}") from None


def _changes(patch: RestaurantPatch) -> RestaurantChanges:
    routine = patch.routine
    return RestaurantChanges(
        name=patch.Name,
        address=patch.Address,
        open=routine.open if routine else None,
        close=routine.close if routine else None,
    )


class _RenderedPages:
    """Response bodies of list reads, keyed on the service's cache version: a write anywhere
    (announced on the change feed) empties it along with the service's own cache."""

    def __init__(self) -> None:
        self._bodies: TTLCache[tuple[str, int, str | None], bytes] = TTLCache(max_entries=1024)
        self._version = -1

    async def body(
        self, service: RestaurantService, *, full: bool, limit: int, cursor: str | None, seed: bool
    ) -> bytes:
        if service.version != self._version:
            self._bodies.clear()
            self._version = service.version
        key = ("seed" if seed else "api") + ("-full" if full else "-public"), limit, cursor
        found, body = self._bodies.get(key)
        if found and body is not None:
            return body
        version = service.version
        view = full_view if full else public_view
        if seed:
            items = await service.all_for_seed_route()
            body = orjson.dumps([view(item) for item in items])
        else:
            page = await service.page(limit=limit, cursor=cursor)
            body = orjson.dumps(
                {"items": [view(item) for item in page.items], "next_cursor": page.next_cursor}
            )
        if version == service.version:
            self._bodies.set(key, body, 30.0)
        return body


_JSON = Headers.of({"Content-Type": "application/json"})


def _json_body(body: bytes) -> OAuthResponse:
    return OAuthResponse(200, body, _JSON)


def _limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_PAGE
    # isdigit() alone also accepts digits int() refuses ("²") and non-ASCII decimal digits.
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_PAGE:
        raise InvalidRequest(f"limit must be an integer from 1 to {MAX_PAGE}")
    return int(value)


def register(api: Api) -> None:
    rendered = _RenderedPages()

    @api.route(
        "/restaurent",
        methods=["GET"],
        doc=Doc(
            summary="List restaurants (seed route)",
            tags=["restaurants (seed)"],
            description="Without credentials: `Name` and `Address` only. With a bearer token "
            "holding `restaurent` or `restaurants:read`: full documents.",
            responses={200: ("Restaurants", RestaurantList), **_ERRORS},
            scopes=sorted(READ_SCOPES),
            optional_auth=True,
        ),
    )
    async def seed_list(call: Call) -> OAuthResponse:
        claims = await _claims(call, any_of=READ_SCOPES, required=False)
        service = call.services.restaurants
        body = await rendered.body(
            service, full=claims is not None, limit=0, cursor=None, seed=True
        )
        return _json_body(body)

    @api.route(
        "/restaurentUpdate",
        methods=["GET"],
        doc=Doc(
            summary="Update a restaurant (seed route)",
            tags=["restaurants (seed)"],
            description="Partial update from query parameters; needs `restaurent` or "
            "`restaurants:write`.",
            parameters=[{**_ID_PARAM, "name": "id", "in": "query"}, *_SEED_FIELDS],
            responses={
                200: ("Updated", Message),
                404: ("No such restaurant", ErrorBody),
                **_ERRORS,
            },
            scopes=sorted(WRITE_SCOPES),
        ),
    )
    async def seed_update(call: Call) -> OAuthResponse:
        services = call.services
        await services.guard.authenticate(call.request, any_of=WRITE_SCOPES, required=True)
        params = parse_query(call.request.query)
        restaurant_id = params.get("id")
        if restaurant_id is None:
            raise InvalidRequest("the id parameter is required")
        changes = RestaurantChanges(
            name=params.get("Name"),
            address=params.get("Address"),
            open=params.get("open"),
            close=params.get("close"),
        )
        await services.restaurants.update(restaurant_id, changes)
        return _json({"message": "Successful"})

    @api.route(
        "/api/restaurants",
        methods=["GET"],
        doc=Doc(
            summary="List restaurants, a page at a time",
            tags=["restaurants"],
            description="Public view without credentials; full documents with "
            "`restaurants:read` (or `restaurent`).",
            parameters=[
                {
                    "name": "limit",
                    "in": "query",
                    "required": False,
                    "schema": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": MAX_PAGE,
                        "default": DEFAULT_PAGE,
                    },
                    **_EMPTY_IS_OMITTED,
                },
                {
                    "name": "cursor",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string", "pattern": "^[0-9a-fA-F]{24}$"},
                    **_EMPTY_IS_OMITTED,
                },
            ],
            responses={200: ("A page of restaurants", RestaurantPage), **_ERRORS},
            scopes=sorted(READ_SCOPES),
            optional_auth=True,
        ),
    )
    async def list_restaurants(call: Call) -> OAuthResponse:
        claims = await _claims(call, any_of=READ_SCOPES, required=False)
        params = parse_query(call.request.query)
        body = await rendered.body(
            call.services.restaurants,
            full=claims is not None,
            limit=_limit(params.get("limit")),
            cursor=params.get("cursor"),
            seed=False,
        )
        return _json_body(body)

    @api.route(
        "/api/restaurants",
        methods=["POST"],
        doc=Doc(
            summary="Create a restaurant",
            tags=["restaurants"],
            request_body={"application/json": RestaurantCreate},
            responses={201: ("Created", RestaurantFull), **_BODY_ERRORS},
            scopes=sorted(WRITE_SCOPES),
        ),
    )
    async def create_restaurant(call: Call) -> OAuthResponse:
        await _claims(call, any_of=WRITE_SCOPES, required=True)
        data: RestaurantCreate = _body(call, RestaurantCreate)
        restaurant = await call.services.restaurants.create(
            name=data.Name,
            address=data.Address,
            open=data.routine.open,
            close=data.routine.close,
        )
        location = f"/api/restaurants/{restaurant.restaurant_id}"
        return _json(full_view(restaurant), 201, {"Location": location})

    @api.route(
        "/api/restaurants/{restaurant_id}",
        methods=["GET"],
        doc=Doc(
            summary="Get one restaurant",
            tags=["restaurants"],
            parameters=[_ID_PARAM],
            responses={
                200: ("The restaurant (the public view without a token)", RestaurantView),
                404: ("No such restaurant", ErrorBody),
                **_ERRORS,
            },
            scopes=sorted(READ_SCOPES),
            optional_auth=True,
        ),
    )
    async def get_restaurant(call: Call) -> OAuthResponse:
        claims = await _claims(call, any_of=READ_SCOPES, required=False)
        restaurant = await call.services.restaurants.get(call.path_params["restaurant_id"])
        return _json(full_view(restaurant) if claims else public_view(restaurant))

    @api.route(
        "/api/restaurants/{restaurant_id}",
        methods=["PATCH"],
        doc=Doc(
            summary="Update some fields of a restaurant",
            tags=["restaurants"],
            parameters=[_ID_PARAM],
            request_body={"application/json": RestaurantPatch},
            responses={
                200: ("The updated restaurant", RestaurantFull),
                404: ("No such restaurant", ErrorBody),
                **_BODY_ERRORS,
            },
            scopes=sorted(WRITE_SCOPES),
        ),
    )
    async def patch_restaurant(call: Call) -> OAuthResponse:
        await _claims(call, any_of=WRITE_SCOPES, required=True)
        patch: RestaurantPatch = _body(call, RestaurantPatch)
        restaurant = await call.services.restaurants.update(
            call.path_params["restaurant_id"], _changes(patch)
        )
        return _json(full_view(restaurant))

    @api.route(
        "/api/restaurants/{restaurant_id}",
        methods=["DELETE"],
        doc=Doc(
            summary="Delete a restaurant",
            tags=["restaurants"],
            parameters=[_ID_PARAM],
            responses={204: ("Deleted", None), 404: ("No such restaurant", ErrorBody), **_ERRORS},
            scopes=sorted(WRITE_SCOPES),
        ),
    )
    async def delete_restaurant(call: Call) -> OAuthResponse:
        await _claims(call, any_of=WRITE_SCOPES, required=True)
        await call.services.restaurants.delete(call.path_params["restaurant_id"])
        return OAuthResponse.empty(204)
