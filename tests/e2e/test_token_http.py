"""The token endpoint through the ASGI app: the seed contract and the RFC 6749 §5.2 table."""

from __future__ import annotations

from collections.abc import AsyncIterator, MutableMapping
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
import pytest
from starlette.applications import Starlette

from oauth_server.oauth.params import MAX_PARAM_LENGTH
from tests.helpers import FORM, SEED_TOKEN_REQUEST, basic


async def test_seed_request_exactly_as_in_the_readme(client: httpx.AsyncClient) -> None:
    response = await client.post("/oauth/token", json=SEED_TOKEN_REQUEST)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["token_type", "expires_in", "access_token"]
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600


async def test_form_with_basic(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/oauth/token",
        content="grant_type=client_credentials&scope=restaurants%3Aread",
        headers={**FORM, "Authorization": basic("admin", "getroot")},
    )
    assert response.status_code == 200, response.text
    assert "scope" not in response.json()


async def test_form_with_post_and_default_scope(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": "admin", "client_secret": "getroot"},
    )
    assert response.status_code == 200
    assert response.json()["scope"] == "restaurent"


B = basic("admin", "getroot")
CASES: list[tuple[str, dict[str, str], bytes, int, str]] = [
    # (name, headers, body, status, error)
    ("no grant_type", FORM, b"client_id=admin&client_secret=getroot", 400, "invalid_request"),
    (
        "repeated parameter",
        FORM,
        b"grant_type=client_credentials&grant_type=client_credentials&client_id=admin"
        b"&client_secret=getroot",
        400,
        "invalid_request",
    ),
    (
        "two auth methods",
        {**FORM, "Authorization": B},
        b"grant_type=client_credentials&client_id=admin&client_secret=getroot",
        400,
        "invalid_request",
    ),
    (
        "wrong content type",
        {"Content-Type": "text/plain"},
        b"grant_type=client_credentials",
        400,
        "invalid_request",
    ),
    ("no content type", {}, b"grant_type=client_credentials", 400, "invalid_request"),
    (
        "multipart",
        {"Content-Type": "multipart/form-data; boundary=x"},
        b"--x--",
        400,
        "invalid_request",
    ),
    (
        "malformed JSON",
        {"Content-Type": "application/json"},
        b'{"grant_type": ',
        400,
        "invalid_request",
    ),
    ("JSON array", {"Content-Type": "application/json"}, b"[]", 400, "invalid_request"),
    (
        "JSON number member",
        {"Content-Type": "application/json"},
        b'{"grant_type": "client_credentials", "client_id": 1}',
        400,
        "invalid_request",
    ),
    (
        "lone surrogate in JSON",
        {"Content-Type": "application/json"},
        b'{"grant_type": "client_credentials", "client_id": "admin", "client_secret": "\\ud800"}',
        400,
        "invalid_request",
    ),
    (
        "invalid UTF-8",
        FORM,
        b"grant_type=client_credentials&client_id=\xff",
        400,
        "invalid_request",
    ),
    (
        "absurd parameter",
        FORM,
        b"grant_type=client_credentials&scope=" + b"a" * 9000,
        400,
        "invalid_request",
    ),
    (
        "unsupported grant",
        FORM,
        b"grant_type=password&username=a&password=b",
        400,
        "unsupported_grant_type",
    ),
    ("implicit-ish grant", FORM, b"grant_type=token", 400, "unsupported_grant_type"),
    ("no client auth", FORM, b"grant_type=client_credentials", 401, "invalid_client"),
    (
        "unknown client",
        FORM,
        b"grant_type=client_credentials&client_id=x&client_secret=y",
        401,
        "invalid_client",
    ),
    (
        "wrong secret",
        FORM,
        b"grant_type=client_credentials&client_id=admin&client_secret=y",
        401,
        "invalid_client",
    ),
    (
        "wrong Basic",
        {**FORM, "Authorization": basic("admin", "nope")},
        b"grant_type=client_credentials",
        401,
        "invalid_client",
    ),
    (
        "garbage Basic",
        {**FORM, "Authorization": "Basic %%%"},
        b"grant_type=client_credentials",
        401,
        "invalid_client",
    ),
    (
        "Bearer at token endpoint",
        {**FORM, "Authorization": "Bearer abc"},
        b"grant_type=client_credentials",
        401,
        "invalid_client",
    ),
    (
        "scope beyond allowed",
        {**FORM, "Authorization": B},
        b"grant_type=client_credentials&scope=admin",
        400,
        "invalid_scope",
    ),
    (
        "malformed scope",
        {**FORM, "Authorization": B},
        b"grant_type=client_credentials&scope=%22x%22",
        400,
        "invalid_scope",
    ),
]


@pytest.mark.parametrize(
    ("headers", "body", "status", "error"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
async def test_token_errors(
    client: httpx.AsyncClient, headers: dict[str, str], body: bytes, status: int, error: str
) -> None:
    response = await client.post("/oauth/token", content=body, headers=headers)
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"] == "application/json"
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Basic ")
    description = response.json().get("error_description", "")
    assert all(0x20 <= ord(c) <= 0x7E and c not in '"\\' for c in description)


async def test_parameters_are_documented_as_single_strings(client: httpx.AsyncClient) -> None:
    # The document allowed unknown members of any type; an array one is sent as a repeated
    # parameter, which OAuth 2.1 §3.1 forbids. And it limited token_type_hint to two values,
    # when RFC 7009 §2.1 says any other is ignored.
    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    one_string = {"anyOf": [{"maxLength": MAX_PARAM_LENGTH, "type": "string"}, {"type": "null"}]}
    for name in ("TokenRequest", "IntrospectionRequest", "RevocationRequest"):
        assert schemas[name]["additionalProperties"] == one_string, name
    assert "enum" not in str(schemas["RevocationRequest"]["properties"]["token_type_hint"])

    auth = {**FORM, "Authorization": basic("admin", "getroot")}
    body = "grant_type=client_credentials&unknown=1"
    assert (await client.post("/oauth/token", content=body, headers=auth)).status_code == 200
    repeated = await client.post("/oauth/token", content=body + "&unknown=2", headers=auth)
    assert repeated.status_code == 400
    assert repeated.json()["error"] == "invalid_request"
    hint = "token=abc&token_type_hint=id_token"
    assert (await client.post("/oauth/revoke", content=hint, headers=auth)).status_code == 200


async def test_parameter_lengths_are_documented_as_enforced(client: httpx.AsyncClient) -> None:
    # scope and resource were documented as at most 2048 characters, but every parameter may
    # have up to MAX_PARAM_LENGTH (a long scope that repeats a token is granted), and no more.
    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    for name in ("scope", "resource"):
        declared = schemas["TokenRequest"]["properties"][name]["anyOf"][0]
        assert declared["maxLength"] == MAX_PARAM_LENGTH, name

    auth = {**FORM, "Authorization": B}
    scope = " ".join(["restaurent"] * 400)
    assert 2048 < len(scope) <= MAX_PARAM_LENGTH
    body = urlencode({"grant_type": "client_credentials", "scope": scope})
    assert (await client.post("/oauth/token", content=body, headers=auth)).status_code == 200
    scope = " ".join(["restaurent"] * 800)
    assert len(scope) > MAX_PARAM_LENGTH
    body = urlencode({"grant_type": "client_credentials", "scope": scope})
    too_long = await client.post("/oauth/token", content=body, headers=auth)
    assert too_long.status_code == 400
    assert too_long.json()["error"] == "invalid_request"


async def test_oversized_body_is_413_before_parsing(client: httpx.AsyncClient) -> None:
    response = await client.post("/oauth/token", content=b"a" * 70_000, headers=FORM)
    assert response.status_code == 413
    assert response.json()["error"] == "invalid_request"


async def test_oversized_chunked_body_is_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b"a" * 1024

    response = await client.post("/oauth/token", content=chunks(), headers=FORM)
    assert response.status_code == 413


async def test_non_ascii_content_length_is_400(app: Starlette) -> None:
    # "²".isdigit() is true but int("²") raises: a server that hands the header over as is
    # (ASGI does not promise it is validated) got a 500. httpx cannot send it, so raw ASGI.
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/oauth/token",
        "raw_path": b"/oauth/token",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", "\u00b2".encode("latin-1")),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    assert sent[0]["status"] == 400
    assert orjson.loads(sent[1]["body"])["error"] == "invalid_request"


async def test_get_is_405_with_allow(client: httpx.AsyncClient) -> None:
    response = await client.get("/oauth/token")
    assert response.status_code == 405
    assert response.headers["allow"] == "OPTIONS, POST"  # OPTIONS: the CORS preflight
    assert response.json()["error"] == "invalid_request"


async def test_unknown_path_is_json_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/nope")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
