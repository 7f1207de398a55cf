"""The restaurants resource through the ASGI app: seed routes, REST API, RFC 6750 errors."""

from __future__ import annotations

import re
from typing import Any

import httpx
import jsonschema_rs
import pytest
from sqlalchemy.exc import OperationalError
from starlette.applications import Starlette

from oauth_server.clock import FrozenClock
from oauth_server.errors import InvalidRequest
from oauth_server.resource.restaurants import check_changes
from oauth_server.services import Services
from oauth_server.storage.models import RestaurantChanges
from tests.helpers import DEMO_ID, bearer, seed_token

FULL_KEYS = ["_id", "Name", "Address", "routine"]


async def test_public_view_without_credentials(client: httpx.AsyncClient) -> None:
    response = await client.get("/restaurent")
    assert response.status_code == 200
    documents = response.json()
    assert len(documents) >= 5
    assert all(list(document) == ["Name", "Address"] for document in documents)


async def test_the_rest_list_is_the_public_view_without_a_token(client: httpx.AsyncClient) -> None:
    """README: ``GET /api/restaurants`` is paginated by cursor, the public view without a
    token."""
    response = await client.get("/api/restaurants", params={"limit": "2"})
    assert response.status_code == 200
    page = response.json()
    assert len(page["items"]) == 2
    assert all(set(item) <= {"_id", "Name", "Address"} for item in page["items"])
    assert all("routine" not in item for item in page["items"])
    assert page["next_cursor"]


async def test_full_documents_with_a_token(client: httpx.AsyncClient) -> None:
    token = await seed_token(client)
    response = await client.get("/restaurent", headers=bearer(token))
    assert response.status_code == 200
    first = response.json()[0]
    assert list(first) == FULL_KEYS
    assert set(first["_id"]) == {"$oid"}
    assert len(first["_id"]["$oid"]) == 24
    assert set(first["routine"]) == {"open", "close"}


async def test_seed_update_persists(client: httpx.AsyncClient) -> None:
    token = await seed_token(client)
    response = await client.get(
        "/restaurentUpdate",
        params={"id": DEMO_ID, "Name": "Renamed", "close": "23:59"},
        headers=bearer(token),
    )
    assert response.status_code == 200
    assert response.json() == {"message": "Successful"}
    document = (await client.get(f"/api/restaurants/{DEMO_ID}", headers=bearer(token))).json()
    assert document["Name"] == "Renamed"
    assert document["routine"]["close"] == "23:59"
    assert document["routine"]["open"] == "17:30"  # partial update kept the rest


async def test_read_scope_token_sees_full_view(client: httpx.AsyncClient) -> None:
    token = await seed_token(client, "restaurants:read")
    response = await client.get("/api/restaurants", headers=bearer(token))
    assert list(response.json()["items"][0]) == FULL_KEYS


async def test_expired_token_is_401_not_public_view(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    token = await seed_token(client)
    clock.advance(3600 + 30 + 1)  # lifetime + the JWT leeway
    response = await client.get("/restaurent", headers=bearer(token))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


SEED_UPDATE = f"/restaurentUpdate?id={DEMO_ID}&Name=x"
CASES: list[tuple[str, str, str, dict[str, str] | None, int, str | None]] = [
    # (name, method, url, headers, status, error)
    ("garbage token", "GET", "/restaurent", {"Authorization": "Bearer nope"}, 401, "invalid_token"),
    (
        "token with bad characters",
        "GET",
        "/restaurent",
        {"Authorization": "Bearer a,b"},
        400,
        "invalid_request",
    ),
    ("empty bearer", "GET", "/restaurent", {"Authorization": "Bearer "}, 400, "invalid_request"),
    (
        "overlong token",
        "GET",
        "/restaurent",
        {"Authorization": "Bearer " + "a" * 5000},
        401,
        "invalid_token",
    ),
    ("basic scheme", "GET", "/restaurent", {"Authorization": "Basic YTpi"}, 401, None),
    ("update without token", "GET", SEED_UPDATE, None, 401, None),
    (
        "update with garbage token",
        "GET",
        SEED_UPDATE,
        {"Authorization": "Bearer x"},
        401,
        "invalid_token",
    ),
    ("query token is ignored", "GET", SEED_UPDATE + "&access_token=abc", None, 401, None),
    ("REST create without token", "POST", "/api/restaurants", None, 401, None),
    ("REST delete without token", "DELETE", f"/api/restaurants/{DEMO_ID}", None, 401, None),
    ("REST bad limit", "GET", "/api/restaurants?limit=0", None, 400, "invalid_request"),
    ("REST huge limit", "GET", "/api/restaurants?limit=100000", None, 400, "invalid_request"),
    # "²".isdigit() is true but int("²") raises: this was a 500.
    (
        "REST superscript limit",
        "GET",
        "/api/restaurants?limit=%C2%B2",
        None,
        400,
        "invalid_request",
    ),
    ("REST non-ASCII limit", "GET", "/api/restaurants?limit=%D9%A1", None, 400, "invalid_request"),
    ("REST bad cursor", "GET", "/api/restaurants?cursor=zz", None, 400, "invalid_request"),
    ("REST malformed id", "GET", "/api/restaurants/xyz", None, 400, "invalid_request"),
    ("REST unknown id", "GET", "/api/restaurants/" + "0" * 24, None, 404, "not_found"),
    ("wrong method", "PUT", "/api/restaurants", None, 405, "invalid_request"),
]


@pytest.mark.parametrize(
    ("method", "url", "headers", "status", "error"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
async def test_resource_errors(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    headers: dict[str, str] | None,
    status: int,
    error: str | None,
) -> None:
    response = await client.request(method, url, headers=headers)
    assert response.status_code == status, response.text
    if status == 401:
        challenge = response.headers["www-authenticate"]
        assert challenge.startswith('Bearer realm="restaurants"')
        if error is None:  # RFC 6750 §3.1: no error code when no credentials were sent
            assert "error=" not in challenge
    if error is not None:
        assert response.json()["error"] == error


UPDATE_CASES: list[tuple[str, dict[str, str], int, str]] = [
    ("missing id", {"Name": "x"}, 400, "invalid_request"),
    ("malformed id", {"id": "123", "Name": "x"}, 400, "invalid_request"),
    ("unknown id", {"id": "0" * 24, "Name": "x"}, 404, "not_found"),
    ("nothing to update", {"id": DEMO_ID}, 400, "invalid_request"),
    ("name too long", {"id": DEMO_ID, "Name": "x" * 201}, 400, "invalid_request"),
    ("control characters", {"id": DEMO_ID, "Name": "a\x00b"}, 400, "invalid_request"),
    ("blank name", {"id": DEMO_ID, "Name": "   "}, 400, "invalid_request"),
    # Creating, importing and PATCH refuse a blank Address; the seed route used to store it.
    ("blank address", {"id": DEMO_ID, "Address": " \t "}, 400, "invalid_request"),
]


@pytest.mark.parametrize(
    ("params", "status", "error"),
    [case[1:] for case in UPDATE_CASES],
    ids=[case[0] for case in UPDATE_CASES],
)
async def test_seed_update_errors(
    client: httpx.AsyncClient, params: dict[str, str], status: int, error: str
) -> None:
    token = await seed_token(client)
    response = await client.get("/restaurentUpdate", params=params, headers=bearer(token))
    assert response.status_code == status, response.text
    assert response.json()["error"] == error


async def test_repeated_query_parameter_is_invalid(client: httpx.AsyncClient) -> None:
    token = await seed_token(client)
    response = await client.get(
        f"/restaurentUpdate?id={DEMO_ID}&Name=a&Name=b", headers=bearer(token)
    )
    assert response.status_code == 400


async def test_read_only_token_cannot_write(client: httpx.AsyncClient) -> None:
    token = await seed_token(client, "restaurants:read")
    response = await client.get(SEED_UPDATE, headers=bearer(token))
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"
    challenge = response.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="restaurants:write restaurent"' in challenge


async def test_write_only_token_gets_403_on_reads(client: httpx.AsyncClient) -> None:
    token = await seed_token(client, "restaurants:write")
    response = await client.get("/restaurent", headers=bearer(token))
    assert response.status_code == 403


async def test_rest_crud_round_trip(client: httpx.AsyncClient) -> None:
    token = await seed_token(client, "restaurants:read restaurants:write")
    created = await client.post(
        "/api/restaurants",
        json={"Name": "Tartine", "Address": "600 Guerrero St", "routine": {"open": "08:00"}},
        headers=bearer(token),
    )
    assert created.status_code == 201, created.text
    document = created.json()
    restaurant_id = document["_id"]["$oid"]
    assert created.headers["location"] == f"/api/restaurants/{restaurant_id}"
    assert document["routine"] == {"open": "08:00", "close": ""}

    patched = await client.patch(
        f"/api/restaurants/{restaurant_id}",
        json={"routine": {"close": "17:00"}},
        headers=bearer(token),
    )
    assert patched.status_code == 200
    assert patched.json()["routine"] == {"open": "08:00", "close": "17:00"}
    assert patched.json()["Name"] == "Tartine"

    public = await client.get(f"/api/restaurants/{restaurant_id}")
    assert public.json() == {"Name": "Tartine", "Address": "600 Guerrero St"}

    deleted = await client.delete(f"/api/restaurants/{restaurant_id}", headers=bearer(token))
    assert deleted.status_code == 204
    gone = await client.get(f"/api/restaurants/{restaurant_id}")
    assert gone.status_code == 404


async def test_pagination_walks_every_restaurant_once(client: httpx.AsyncClient) -> None:
    seen: list[str] = []
    cursor = None
    token = await seed_token(client)
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/restaurants", params=params, headers=bearer(token))).json()
        seen += [item["_id"]["$oid"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 5
    assert seen == sorted(set(seen))


BODY_CASES: list[tuple[str, str, object, str | None]] = [
    ("missing Name", "POST", {"Address": "x"}, None),
    ("unknown member", "POST", {"Name": "a", "Address": "b", "stars": 5}, None),
    ("Name too long", "POST", {"Name": "x" * 201, "Address": "b"}, None),
    ("wrong type", "POST", {"Name": 1, "Address": "b"}, None),
    ("not an object", "POST", [1, 2], None),
    ("blank Name", "PATCH", {"Name": " "}, None),
    ("empty patch", "PATCH", {}, None),
    ("routine too long", "PATCH", {"routine": {"open": "x" * 33}}, None),
    ("form body", "POST", None, "application/x-www-form-urlencoded"),
]


@pytest.mark.parametrize(
    ("method", "body", "content_type"),
    [case[1:] for case in BODY_CASES],
    ids=[case[0] for case in BODY_CASES],
)
async def test_rest_body_validation(
    client: httpx.AsyncClient, method: str, body: object, content_type: str | None
) -> None:
    token = await seed_token(client)
    url = "/api/restaurants" if method == "POST" else f"/api/restaurants/{DEMO_ID}"
    headers = bearer(token)
    if content_type:
        response = await client.request(
            method, url, content=b"Name=a", headers={**headers, "Content-Type": content_type}
        )
    else:
        response = await client.request(method, url, json=body, headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"


async def test_malformed_json_body(client: httpx.AsyncClient) -> None:
    token = await seed_token(client)
    response = await client.post(
        "/api/restaurants",
        content=b"{not json",
        headers={**bearer(token), "Content-Type": "application/json"},
    )
    assert response.status_code == 400


async def test_openapi_documents_every_route(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    assert set(document["paths"]) >= {
        "/oauth/token",
        "/restaurent",
        "/restaurentUpdate",
        "/api/restaurants",
        "/api/restaurants/{restaurant_id}",
    }
    assert set(document["paths"]["/api/restaurants/{restaurant_id}"]) == {"get", "patch", "delete"}
    create = document["components"]["schemas"]["RestaurantCreate"]
    assert create["properties"]["Name"]["maxLength"] == 200
    assert (await client.get("/docs")).status_code == 200


def _accepted(changes: RestaurantChanges) -> bool:
    try:
        check_changes(changes)
    except InvalidRequest:
        return False
    return True


async def test_documented_text_patterns_are_what_the_server_accepts(
    client: httpx.AsyncClient,
) -> None:
    # The document used to allow the control characters the server refuses.
    document = (await client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    name = schemas["RestaurantCreate"]["properties"]["Name"]["pattern"]
    time = schemas["Routine"]["properties"]["open"]["pattern"]
    update = {p["name"]: p for p in document["paths"]["/restaurentUpdate"]["get"]["parameters"]}
    assert update["Name"]["schema"]["pattern"] == update["Address"]["schema"]["pattern"] == name
    assert update["open"]["schema"]["pattern"] == time
    samples = [chr(code) for code in range(0x3100)] + ["\ufeff", "\uffff", "\U0001f600"]
    for char in samples:
        for text in (char, f"a{char}", f"{char}a", f"{char} "):
            visible = re.fullmatch(name, text) is not None
            assert visible == _accepted(RestaurantChanges(name=text)), repr(text)
            assert visible == _accepted(RestaurantChanges(address=text)), repr(text)
            plain = re.fullmatch(time, text) is not None
            assert plain == _accepted(RestaurantChanges(open=text)), repr(text)


async def test_empty_query_values_count_as_omitted_as_documented(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    parameters = document["paths"]["/api/restaurants"]["get"]["parameters"]
    assert all(parameter["allowEmptyValue"] for parameter in parameters)
    response = await client.get("/api/restaurants?limit=&cursor=")
    assert response.status_code == 200
    assert response.json() == (await client.get("/api/restaurants")).json()


def assert_documented(document: dict[str, Any], path: str, response: httpx.Response) -> None:
    """The response's status is documented for its operation and its body fits that schema."""
    operation = document["paths"][path][response.request.method.lower()]
    documented = operation["responses"]
    assert str(response.status_code) in documented, (response.status_code, sorted(documented))
    content = documented[str(response.status_code)].get("content")
    if content is None:
        assert response.content == b""
        return
    schema = {**content["application/json"]["schema"], "components": document["components"]}
    assert jsonschema_rs.validator_for(schema).is_valid(response.json()), response.text


async def test_answers_match_the_documented_responses(
    app: Starlette, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each of these answers used to be missing from the OpenAPI document: the public view of
    # one restaurant (documented as the full document), 413 for a body over the cap, and 503
    # when the database is down.
    document = (await client.get("/openapi.json")).json()
    one = "/api/restaurants/{restaurant_id}"
    token = bearer(await seed_token(client))
    oversized = {"Name": "x" * 70_000, "Address": "y"}

    public = await client.get(f"/api/restaurants/{DEMO_ID}")
    assert list(public.json()) == ["Name", "Address"]
    assert_documented(document, one, public)
    assert_documented(document, one, await client.get(f"/api/restaurants/{DEMO_ID}", headers=token))
    too_large = await client.post("/api/restaurants", json=oversized, headers=token)
    assert too_large.status_code == 413
    assert_documented(document, "/api/restaurants", too_large)
    too_large = await client.patch(f"/api/restaurants/{DEMO_ID}", json=oversized, headers=token)
    assert too_large.status_code == 413
    assert_documented(document, one, too_large)

    async def down(**_: object) -> None:
        raise OperationalError("SELECT …", {}, ConnectionRefusedError("database is down"))

    services: Services = app.state.services
    monkeypatch.setattr(services.storage.restaurants, "get", down)
    unavailable = await client.get(f"/api/restaurants/{DEMO_ID}")
    assert unavailable.status_code == 503
    assert_documented(document, one, unavailable)


async def test_health_endpoints(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ready"}


# RFC 6750 §3: the resource server MUST send the challenge when the request "does not include
# authentication credentials or does not contain an access token that enables access to the
# protected resource"; §3.1 names invalid_request among its error codes. A 400 about how the
# token was sent is such an error and carries the challenge; a 400 about a parameter, with a
# token that enables access (or on a route that needs none), is not about authentication and
# carries none, so a client does not take it as a reason to fetch a new token.
TOKEN_REQUEST_ERRORS = [
    ("GET", "/restaurent", "Bearer "),
    ("GET", "/restaurent", "Bearer a,b"),
    ("GET", "/api/restaurants", "Bearer "),
    ("GET", SEED_UPDATE, "Bearer a b"),
]


@pytest.mark.parametrize(("method", "url", "authorization"), TOKEN_REQUEST_ERRORS)
async def test_malformed_credentials_get_a_bearer_invalid_request_challenge(
    client: httpx.AsyncClient, method: str, url: str, authorization: str
) -> None:
    response = await client.request(method, url, headers={"Authorization": authorization})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="restaurants", error="invalid_request"')


PARAMETER_ERRORS = [
    "/api/restaurants?limit=abc",
    "/api/restaurants?cursor=zz",
    "/api/restaurants/xyz",
    "/restaurentUpdate?id=123&Name=x",
    "/restaurentUpdate?Name=x",
    f"/restaurentUpdate?id={DEMO_ID}",
]


@pytest.mark.parametrize("with_token", [True, False], ids=["token", "no-token"])
@pytest.mark.parametrize("url", PARAMETER_ERRORS)
async def test_parameter_errors_carry_no_bearer_challenge(
    client: httpx.AsyncClient, url: str, with_token: bool
) -> None:
    headers = bearer(await seed_token(client)) if with_token else {}
    response = await client.get(url, headers=headers)
    if not with_token and url.startswith("/restaurentUpdate"):
        assert response.status_code == 401  # a token is required: the challenge comes first
        assert "error=" not in response.headers["www-authenticate"]
        return
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"
    assert "www-authenticate" not in response.headers
