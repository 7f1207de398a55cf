"""Inputs the database cannot store never reach it (issue 8 finding 4), on SQLite and PostgreSQL.

PostgreSQL refuses a NUL in a text value, and no database can store a lone UTF-16 surrogate
(JSON can spell one: ``"\\ud800"``). Every input that reaches SQL is checked for its syntax
first, so each case here gets an RFC-shaped 4xx — never a 500 — and a client id of the wrong
syntax is, to the client, an unknown client: ``invalid_client``, counted by the rate limiter and
recorded in the audit trail like any other failed authentication.
"""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from oauth_server.web.api import FastRouter
from tests.helpers import DEMO_ID, FORM, app_services, basic, bearer, seed_token

JSON = {"Content-Type": "application/json"}
ENDPOINTS = ["/oauth/token", "/oauth/introspect", "/oauth/revoke"]


pytestmark = pytest.mark.settings(
    secret_key="input-syntax-test-secret-key-0123456789",
    rate_limit_auth_failures_per_client="5/minute",
    rate_limit_auth_failures_per_address="8/minute",
)


def _raw_basic(client_id: str, secret: str) -> str:
    # Not form-encoded first: the decoded credentials themselves carry the character.
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


# (endpoint, body, content type, Authorization) — each with a client id the database cannot
# store, or that RFC 6749 Appendix A.1 does not allow (client-id = *VSCHAR, %x20-7E).
BAD_CLIENT_IDS = [
    pytest.param(
        path,
        "grant_type=client_credentials&token=x&client_id=adm%00in&client_secret=getroot",
        FORM,
        None,
        id=f"{path}-form-nul",
    )
    for path in ENDPOINTS
] + [
    pytest.param(
        path,
        "grant_type=client_credentials&token=x",
        FORM,
        basic("adm\x00in", "getroot"),
        id=f"{path}-basic-nul",
    )
    for path in ENDPOINTS
] + [
    pytest.param(
        "/oauth/token",
        json.dumps({"grant_type": "client_credentials", "client_id": "adm\x00in",
                    "client_secret": "getroot"}),
        JSON,
        None,
        id="token-json-nul",
    ),
    pytest.param(
        "/oauth/token",
        "grant_type=client_credentials",
        FORM,
        _raw_basic("adm\x00in", "getroot"),
        id="token-raw-basic-nul",
    ),
    pytest.param(
        "/oauth/token",
        "grant_type=client_credentials&client_id=adm%0Ain&client_secret=getroot",
        FORM,
        None,
        id="token-form-newline",
    ),
    pytest.param(
        "/oauth/token",
        "grant_type=client_credentials&client_id=adm%C3%A9in&client_secret=getroot",
        FORM,
        None,
        id="token-form-non-ascii",
    ),
    pytest.param(
        "/oauth/token",
        "grant_type=client_credentials&client_id=adm%7Fin&client_secret=getroot",
        FORM,
        None,
        id="token-form-del",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("path", "body", "headers", "authorization"), BAD_CLIENT_IDS)
async def test_a_client_id_of_bad_syntax_is_an_unknown_client(
    client: httpx.AsyncClient,
    path: str,
    body: str,
    headers: dict[str, str],
    authorization: str | None,
) -> None:
    extra = {"Authorization": authorization} if authorization else {}
    response = await client.post(path, content=body, headers={**headers, **extra})
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"
    assert response.headers["cache-control"] == "no-store"
    # The answer an unknown client gets, word for word.
    unknown = await client.post(
        path,
        content=body.replace("adm%00in", "nobody").replace("adm%0Ain", "nobody")
        .replace("adm%C3%A9in", "nobody").replace("adm%7Fin", "nobody")
        .replace('adm\\u0000in', "nobody"),
        headers={**headers, **({"Authorization": basic("nobody", "getroot")} if extra else {})},
    )  # fmt: skip
    assert (unknown.status_code, unknown.json()) == (response.status_code, response.json())


async def test_bad_client_ids_are_rate_limited_and_audited(
    app: FastRouter, client: httpx.AsyncClient
) -> None:
    statuses = []
    for _ in range(6):
        response = await client.post(
            "/oauth/token",
            content="grant_type=client_credentials&client_id=adm%00in&client_secret=getroot",
            headers=FORM,
        )
        statuses.append(response.status_code)
    # Five failures for that client id (the per-client budget), then 429 like any brute force.
    assert statuses == [401] * 5 + [429]
    await app_services(app).audit.flush()
    events = await app_services(app).storage.audit.recent(limit=100)
    failed = [json.loads(e.data) for e in events if e.kind == "client_auth_failed"]
    assert len(failed) == 5
    assert {event["client_id"] for event in failed} == {"adm\x00in"}
    assert {event["reason"] for event in failed} == {"malformed client id"}


TOKEN_LIKE = [
    "\x00" * 43,
    "A" * 42 + "\x00",
    "abc\x00def",
    "eyJ\x00.eyJ.sig",
    "\u00e9" * 43,
]


@pytest.mark.parametrize("value", TOKEN_LIKE, ids=repr)
async def test_token_values_of_bad_syntax_are_inactive_or_ignored(
    client: httpx.AsyncClient, value: str
) -> None:
    form = {"token": value}
    introspected = await client.post(
        "/oauth/introspect", data=form, headers={"Authorization": basic("admin", "getroot")}
    )
    assert (introspected.status_code, introspected.json()) == (200, {"active": False})
    revoked = await client.post(
        "/oauth/revoke", data=form, headers={"Authorization": basic("admin", "getroot")}
    )
    assert revoked.status_code == 200


@pytest.mark.parametrize(
    "target",
    [
        "/api/restaurants/5f1a2b3c4d5e6f7a8b9c0d%00",
        "/api/restaurants/%00",
        "/api/restaurants?cursor=5f1a2b3c4d5e6f7a8b9c0d%00",
        "/api/restaurants?cursor=%ED%A0%80",
        "/api/restaurants?cursor=%00",
        "/api/restaurants?limit=%00",
        "/restaurentUpdate?id=%00&Name=x",
        f"/restaurentUpdate?id={DEMO_ID}&Name=a%00b",
        f"/restaurentUpdate?id={DEMO_ID}&open=%00",
    ],
)
async def test_restaurant_ids_cursors_and_query_fields_of_bad_syntax(
    client: httpx.AsyncClient, target: str
) -> None:
    token = await seed_token(client)
    response = await client.get(target, headers=bearer(token))
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"] in ("invalid_request", "not_found")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/restaurants", '{"Name": "a\\u0000b", "Address": "x"}'),
        ("POST", "/api/restaurants", '{"Name": "\\ud800", "Address": "x"}'),
        ("POST", "/api/restaurants", '{"Name": "x", "Address": "a\\udfffb"}'),
        ("POST", "/api/restaurants", '{"Name": "x", "Address": "y", "routine": {"open": "\\u0000"}}'),  # noqa: E501
        ("PATCH", f"/api/restaurants/{DEMO_ID}", '{"Name": "\\ud800"}'),
        ("PATCH", f"/api/restaurants/{DEMO_ID}", '{"Address": "a\\u0000"}'),
        ("PATCH", f"/api/restaurants/{DEMO_ID}", '{"routine": {"close": "\\udbff"}}'),
    ],
)  # fmt: skip
async def test_restaurant_fields_the_database_cannot_store(
    client: httpx.AsyncClient, method: str, path: str, body: str
) -> None:
    token = await seed_token(client, scope="restaurants:write")
    response = await client.request(method, path, content=body, headers={**JSON, **bearer(token)})
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    "body",
    [
        "grant_type=client_credentials&scope=restaurent%00",
        "grant_type=client_credentials&scope=%ED%A0%80",
        "grant_type=client_credentials&resource=https://x.example/%00",
        "grant_type=client_credentials&resource=%00",
        "grant_type=client_%00credentials",
    ],
)
async def test_scope_resource_and_grant_type_of_bad_syntax(
    client: httpx.AsyncClient, body: str
) -> None:
    response = await client.post(
        "/oauth/token", content=body, headers={**FORM, "Authorization": basic("admin", "getroot")}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] in (
        "invalid_request",
        "invalid_scope",
        "invalid_target",
        "unsupported_grant_type",
    )


async def test_json_scope_with_a_lone_surrogate(client: httpx.AsyncClient) -> None:
    body = '{"client_id": "admin", "client_secret": "getroot", "grant_type": '
    body += '"client_credentials", "scope": "restaurent \\ud800"}'
    response = await client.post("/oauth/token", content=body, headers=JSON)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_opaque_bearer_tokens_of_bad_syntax(client: httpx.AsyncClient) -> None:
    for value in ["A" * 42 + "%00", "\x00"]:
        response = await client.get(
            "/api/restaurants", headers={"Authorization": f"Bearer {value}"}
        )
        assert response.status_code in (400, 401), response.text
        assert "Bearer" in response.headers["www-authenticate"]
