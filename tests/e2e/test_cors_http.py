"""Client-based CORS (``oauth/cors.py``) through the ASGI app: the token, revocation and
userinfo endpoints answer a single-page app's origin — the web origin of one of its client's
redirect URIs — and refuse any other before doing anything; preflights; never ``*``, never
credentials, ``Vary: Origin``; CORS stays off everywhere else."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from oauth_server.oauth.cors import client_origins, web_origin
from oauth_server.services import Services
from oauth_server.web.api import FastRouter
from tests.signin import (
    App,
    browser_sign_in,
    ensure_user,
    pkce_pair,
    query_of,
    register_app,
    tokens_for,
)

pytestmark = pytest.mark.asyncio

SPA = "https://spa.example"
OTHER = "https://other.example"


@pytest.fixture
async def spa(app_svc: Services) -> App:
    await ensure_user(app_svc)
    return await register_app(
        app_svc,
        name="Menu SPA",
        require_consent=False,
        redirect_uris=(f"{SPA}/callback", "com.example.app:/cb"),
    )


@pytest.fixture
async def other(app_svc: Services) -> App:
    return await register_app(
        app_svc, name="Other", require_consent=False, redirect_uris=(f"{OTHER}/cb",)
    )


@pytest.fixture
async def http(app: FastRouter) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def varies_by_origin(response: httpx.Response) -> bool:
    return "Origin" in {
        v.strip() for line in response.headers.get_list("vary") for v in line.split(",")
    }


def assert_allowed(response: httpx.Response, origin: str = SPA) -> None:
    assert response.headers["access-control-allow-origin"] == origin
    assert "access-control-allow-credentials" not in response.headers
    assert varies_by_origin(response)


def assert_refused(response: httpx.Response) -> None:
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-credentials" not in response.headers


@pytest.mark.parametrize(
    ("uri", "origin"),
    [
        ("https://spa.example/callback", "https://spa.example"),
        ("https://SPA.example:443/cb?x=1", "https://spa.example"),
        ("https://spa.example:8443/cb", "https://spa.example:8443"),
        ("http://127.0.0.1:5173/cb", "http://127.0.0.1:5173"),
        ("http://[::1]:80/cb", "http://[::1]"),
        ("com.example.app:/cb", None),
        ("https://:0/", None),
        ("https://bad:port/", None),
    ],
)
async def test_the_web_origin_of_a_redirect_uri(uri: str, origin: str | None) -> None:
    assert web_origin(uri) == origin


async def code_for(http: httpx.AsyncClient, spa: App) -> tuple[str, str]:
    verifier, challenge = pkce_pair()
    landed = await browser_sign_in(http, spa, challenge)
    assert landed.status_code == 303, landed.text
    return query_of(landed.headers["location"])["code"], verifier


def redemption(spa: App, code: str, verifier: str) -> dict[str, str]:
    return {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": spa.redirect_uri,
        "client_id": spa.client_id,
        "code_verifier": verifier,
    }


async def test_the_spa_redeems_its_code_from_its_origin(
    http: httpx.AsyncClient, spa: App, app_svc: Services
) -> None:
    client = await app_svc.clients.get(spa.client_id)
    assert client is not None
    assert client_origins(client) == {SPA}  # the private-use scheme has no web origin
    code, verifier = await code_for(http, spa)
    response = await http.post(
        "/oauth/token", data=redemption(spa, code, verifier), headers={"Origin": SPA}
    )
    assert response.status_code == 200, response.text
    assert_allowed(response)
    # An error after the client is known is readable too (the app can show invalid_grant).
    again = await http.post(
        "/oauth/token", data=redemption(spa, code, verifier), headers={"Origin": SPA}
    )
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    assert_allowed(again)


@pytest.mark.parametrize(
    "origin",
    [OTHER, "null", "https://spa.example.evil.example", "http://spa.example", f"{SPA}:444"],
)
async def test_another_origin_is_refused_before_the_code_is_redeemed(
    http: httpx.AsyncClient, spa: App, other: App, origin: str
) -> None:
    code, verifier = await code_for(http, spa)
    refused = await http.post(
        "/oauth/token", data=redemption(spa, code, verifier), headers={"Origin": origin}
    )
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_request"
    assert_refused(refused)
    # Nothing happened: the code still works for the app itself.
    ok = await http.post(
        "/oauth/token", data=redemption(spa, code, verifier), headers={"Origin": SPA}
    )
    assert ok.status_code == 200, ok.text


async def test_errors_before_the_client_is_known_carry_no_cors_header(
    http: httpx.AsyncClient, spa: App
) -> None:
    response = await http.post(
        "/oauth/token",
        data={"grant_type": "authorization_code", "client_id": "nobody", "code": "x"},
        headers={"Origin": SPA},
    )
    assert response.status_code == 401
    assert_refused(response)


async def test_revocation_from_the_spa_origin_only(
    http: httpx.AsyncClient, spa: App, other: App
) -> None:
    _, tokens = await tokens_for(http, spa, scope="restaurants:read")  # gets a refresh token
    form = {"token": tokens["refresh_token"], "client_id": spa.client_id}
    refused = await http.post("/oauth/revoke", data=form, headers={"Origin": OTHER})
    assert refused.status_code == 400
    assert_refused(refused)
    still = await http.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": spa.client_id,
        },
    )
    assert still.status_code == 200, still.text  # the refused revocation revoked nothing
    revoked = await http.post(
        "/oauth/revoke",
        data={"token": still.json()["refresh_token"], "client_id": spa.client_id},
        headers={"Origin": SPA},
    )
    assert revoked.status_code == 200
    assert_allowed(revoked)


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_userinfo_answers_the_origin_of_the_tokens_client(
    http: httpx.AsyncClient, spa: App, other: App, method: str
) -> None:
    _, tokens = await tokens_for(http, spa)
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    ok = await http.request(method, "/oauth/userinfo", headers={**bearer, "Origin": SPA})
    assert ok.status_code == 200, ok.text
    assert_allowed(ok)
    assert "WWW-Authenticate" in ok.headers["access-control-expose-headers"]
    # The other app's origin may not read this app's user.
    refused = await http.request(method, "/oauth/userinfo", headers={**bearer, "Origin": OTHER})
    assert refused.status_code == 400
    assert_refused(refused)


async def test_same_origin_and_no_origin_need_no_cors(
    http: httpx.AsyncClient, spa: App, app_svc: Services
) -> None:
    _, tokens = await tokens_for(http, spa)
    own = web_origin(app_svc.settings.public_issuer)
    assert own is not None
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    for headers in ({**bearer, "Origin": own}, bearer):
        response = await http.get("/oauth/userinfo", headers=headers)
        assert response.status_code == 200
        assert_refused(response)
        assert varies_by_origin(response)


@pytest.mark.parametrize(
    ("path", "method", "headers"),
    [
        ("/oauth/token", "POST", "content-type"),
        ("/oauth/revoke", "POST", "Content-Type"),
        ("/oauth/userinfo", "GET", "authorization"),
        ("/oauth/userinfo", "POST", "authorization, content-type"),
        ("/oauth/token", "POST", ""),
    ],
)
async def test_a_preflight_is_answered_for_a_web_origin(
    http: httpx.AsyncClient, path: str, method: str, headers: str
) -> None:
    """Rule 3: a preflight names no client, so any well-formed web origin gets one; the
    actual request is what checks the client (tests above)."""
    asked = {"Origin": OTHER, "Access-Control-Request-Method": method}
    if headers:
        asked["Access-Control-Request-Headers"] = headers
    response = await http.options(path, headers=asked)
    assert response.status_code == 204
    assert_allowed(response, OTHER)
    assert method in response.headers["access-control-allow-methods"]
    assert response.headers["access-control-allow-headers"] == "Authorization, Content-Type"
    assert response.headers["access-control-max-age"] == "600"


@pytest.mark.parametrize(
    ("origin", "method", "headers"),
    [
        ("null", "POST", ""),
        ("*", "POST", ""),
        (f"{SPA}/", "POST", ""),
        ("https://SPA.example", "POST", ""),
        ("ftp://spa.example", "POST", ""),
        (SPA, "DELETE", ""),
        (SPA, "GET", ""),  # the token endpoint is POST only
        (SPA, "POST", "x-custom"),
        (SPA, "POST", "authorization, cookie"),
    ],
)
async def test_a_preflight_outside_the_rule_gets_no_cors(
    http: httpx.AsyncClient, origin: str, method: str, headers: str
) -> None:
    asked = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        asked["Access-Control-Request-Headers"] = headers
    response = await http.options("/oauth/token", headers=asked)
    assert response.status_code == 204
    assert_refused(response)


@pytest.mark.parametrize("path", ["/oauth/authorize", "/oauth/logout", "/oauth/introspect"])
async def test_no_cors_on_the_other_oauth_endpoints(http: httpx.AsyncClient, path: str) -> None:
    preflight = await http.options(
        path, headers={"Origin": SPA, "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code == 405
    assert_refused(preflight)
    actual = await http.post(path, headers={"Origin": SPA})
    assert_refused(actual)
