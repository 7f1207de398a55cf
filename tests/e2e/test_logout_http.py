"""RP-Initiated Logout 1.0 through the ASGI app, on both databases: the RP that proves the
session signs the user out at once; anyone else gets the confirmation page (CSRF-protected);
a bad client, redirect URI or hint gets an error page, never a redirect; logout ends the
session, clears the cookie, audits, and revokes the session's refresh tokens except
``offline_access`` ones."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import jwt as pyjwt
import pytest

from oauth_server.oauth.tokens.id_token import IdTokenIssuer
from oauth_server.services import Services
from oauth_server.storage.models import User
from oauth_server.web.api import FastRouter
from tests.jwt_forgeries import alg_none, make_key, sign, swap_payload
from tests.signin import (
    App,
    ensure_user,
    pkce_pair,
    query_of,
    read_form,
    register_app,
    tokens_for,
)

pytestmark = pytest.mark.asyncio

LOGGED_OUT = "https://app.example/logged-out"
LOGOUT_SCOPES = ("openid", "profile", "offline_access", "restaurants:read")


@pytest.fixture
async def user_id(app_svc: Services) -> str:
    return await ensure_user(app_svc)


@pytest.fixture
async def rp(app_svc: Services, user_id: str) -> App:
    return await register_app(
        app_svc,
        require_consent=False,
        post_logout_redirect_uris=(LOGGED_OUT, "https://app.example/bye?from=op"),
        scopes=LOGOUT_SCOPES,
    )


@pytest.fixture
async def other_rp(app_svc: Services) -> App:
    return await register_app(
        app_svc,
        name="Other App",
        require_consent=False,
        redirect_uris=("https://other.example/cb",),
        post_logout_redirect_uris=("https://other.example/bye",),
    )


@pytest.fixture
async def browser(app: FastRouter) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def signed_in(http: httpx.AsyncClient, rp: App, scope: str = "openid") -> dict[str, str]:
    _, body = await tokens_for(http, rp, scope=scope)
    return body


async def session_is_live(http: httpx.AsyncClient, rp: App) -> bool:
    """prompt=none answers with a code only while the browser session lives."""
    _, challenge = pkce_pair()
    response = await http.get(
        "/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": rp.client_id,
            "redirect_uri": rp.redirect_uri,
            "scope": "openid",
            "prompt": "none",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
    )
    assert response.status_code == 303
    query = query_of(response.headers["location"])
    assert "code" in query or query["error"] == "login_required", query
    return "code" in query


def assert_error_page(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert "cannot be completed" in response.text


async def test_discovery_advertises_the_end_session_endpoint(
    browser: httpx.AsyncClient, app_svc: Services
) -> None:
    metadata = (await browser.get("/.well-known/openid-configuration")).json()
    assert metadata["end_session_endpoint"] == f"{app_svc.settings.public_issuer}/oauth/logout"


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_the_rp_of_the_session_signs_the_user_out_at_once(
    browser: httpx.AsyncClient, app_svc: Services, rp: App, user_id: str, method: str
) -> None:
    tokens = await signed_in(browser, rp)
    old_cookie = browser.cookies["oauth_session"]
    params = {
        "id_token_hint": tokens["id_token"],
        "post_logout_redirect_uri": LOGGED_OUT,
        "state": "bye &1",
        "ui_locales": "fr-CA fr en",  # §2: unsupported locales are no error
    }
    if method == "GET":
        response = await browser.get("/oauth/logout", params=params)
    else:
        response = await browser.post("/oauth/logout", data=params)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"{LOGGED_OUT}?state=bye+%261"
    cookies = response.headers.get_list("set-cookie")
    assert any(c.startswith("oauth_session=;") and "Max-Age=0" in c for c in cookies)
    assert not await session_is_live(browser, rp)
    # Ended on the server, not just forgotten by the browser: the old cookie is dead.
    browser.cookies.set("oauth_session", old_cookie, domain="testserver.local")
    assert not await session_is_live(browser, rp)
    await app_svc.audit.flush()
    events = [e for e in await app_svc.storage.audit.recent(limit=50) if e.kind == "logout"]
    assert len(events) == 1
    data = json.loads(events[0].data)
    assert data["user_id"] == user_id
    assert data["client_id"] == rp.client_id
    assert data["reason"] == "id_token_hint"


async def test_a_registered_uri_with_its_own_query_keeps_it(
    browser: httpx.AsyncClient, rp: App
) -> None:
    tokens = await signed_in(browser, rp)
    response = await browser.get(
        "/oauth/logout",
        params={
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": "https://app.example/bye?from=op",
            "state": "s",
        },
    )
    assert response.headers["location"] == "https://app.example/bye?from=op&state=s"


async def test_an_expired_hint_of_the_session_is_accepted(
    browser: httpx.AsyncClient, app_svc: Services, app: FastRouter, rp: App
) -> None:
    tokens = await signed_in(browser, rp)
    app_svc.clock.advance(app_svc.settings.id_token_ttl + 60)  # type: ignore[attr-defined]
    claims = pyjwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert claims["exp"] < app_svc.clock.now()
    response = await browser.get(
        "/oauth/logout",
        params={"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": LOGGED_OUT},
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == LOGGED_OUT
    assert not await session_is_live(browser, rp)


async def confirmation(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 200, response.text
    assert "Sign out of PythonOauthServer?" in response.text
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    form = read_form(response.text)
    assert form.actions == ["/oauth/logout"]
    assert ("decision", "logout") in form.buttons
    assert ("decision", "stay") in form.buttons
    return form.fields


async def test_without_proof_the_user_confirms_and_then_is_signed_out(
    browser: httpx.AsyncClient, rp: App
) -> None:
    await signed_in(browser, rp)
    page = await browser.get(
        "/oauth/logout",
        params={"client_id": rp.client_id, "post_logout_redirect_uri": LOGGED_OUT, "state": "x"},
    )
    fields = await confirmation(page)
    assert "Menu Planner" in page.text  # the client's name
    assert "alice" in page.text
    # The redirect target is allowed as a form action (the 303 answers the form).
    assert "https://app.example" in page.headers["content-security-policy"]
    assert await session_is_live(browser, rp)  # showing the page changed nothing
    done = await browser.post("/oauth/logout", data={**fields, "decision": "logout"})
    assert done.status_code == 303, done.text
    assert done.headers["location"] == f"{LOGGED_OUT}?state=x"
    assert not await session_is_live(browser, rp)


async def test_without_a_redirect_the_signed_out_page_is_shown(
    browser: httpx.AsyncClient, rp: App
) -> None:
    await signed_in(browser, rp)
    fields = await confirmation(await browser.get("/oauth/logout"))
    done = await browser.post("/oauth/logout", data={**fields, "decision": "logout"})
    assert done.status_code == 200
    assert "You are signed out" in done.text
    assert not await session_is_live(browser, rp)


async def test_staying_signed_in_changes_nothing(browser: httpx.AsyncClient, rp: App) -> None:
    await signed_in(browser, rp)
    page = await browser.get(
        "/oauth/logout", params={"client_id": rp.client_id, "post_logout_redirect_uri": LOGGED_OUT}
    )
    fields = await confirmation(page)
    stay = await browser.post("/oauth/logout", data={**fields, "decision": "stay"})
    assert stay.status_code == 303
    assert stay.headers["location"] == LOGGED_OUT
    assert await session_is_live(browser, rp)


async def test_a_hint_of_another_session_asks_first(
    browser: httpx.AsyncClient, app: FastRouter, rp: App
) -> None:
    old = await signed_in(browser, rp)
    # The same user signs in again (prompt=login): a new session, the old hint is stale.
    await tokens_for(browser, rp, scope="openid", prompt="login")
    page = await browser.get(
        "/oauth/logout",
        params={"id_token_hint": old["id_token"], "post_logout_redirect_uri": LOGGED_OUT},
    )
    await confirmation(page)
    assert await session_is_live(browser, rp)


async def test_a_logout_hint_naming_someone_else_asks_first(
    browser: httpx.AsyncClient, rp: App
) -> None:
    tokens = await signed_in(browser, rp)
    page = await browser.get(
        "/oauth/logout", params={"id_token_hint": tokens["id_token"], "logout_hint": "mallory"}
    )
    await confirmation(page)
    same = await browser.get(
        "/oauth/logout", params={"id_token_hint": tokens["id_token"], "logout_hint": "ALICE"}
    )
    assert same.status_code == 200
    assert "You are signed out" in same.text


@pytest.mark.parametrize(
    "form",
    [
        {"decision": "logout"},  # no token
        {"decision": "logout", "csrf_token": "forged"},
        {"decision": "logout", "csrf_token": ""},
    ],
    ids=["missing", "forged", "empty"],
)
async def test_no_csrf_logout(browser: httpx.AsyncClient, rp: App, form: dict[str, str]) -> None:
    await signed_in(browser, rp)
    response = await browser.post("/oauth/logout", data=form)
    # Without a valid token, a POST with `decision` is not the confirmation: refused or asked.
    assert response.status_code in (200, 400)
    assert "location" not in response.headers
    assert await session_is_live(browser, rp)


async def test_a_token_without_its_nonce_cookie_is_refused(
    app: FastRouter, browser: httpx.AsyncClient, rp: App
) -> None:
    """Another site that shows the page to itself cannot post its token from the victim's
    browser: the token is bound to the nonce cookie of the browser that saw the page."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as attacker:
        # Signed in nowhere, the attacker POSTs: a POST without a session is asked to confirm.
        fields = await confirmation(await attacker.post("/oauth/logout", data={"ui_locales": "en"}))
    await signed_in(browser, rp)
    response = await browser.post("/oauth/logout", data={**fields, "decision": "logout"})
    assert_error_page(response)
    assert await session_is_live(browser, rp)


async def test_a_get_with_decision_is_not_a_confirmation(
    browser: httpx.AsyncClient, rp: App
) -> None:
    await signed_in(browser, rp)
    fields = await confirmation(await browser.get("/oauth/logout"))
    response = await browser.get("/oauth/logout", params={**fields, "decision": "logout"})
    assert_error_page(response)
    assert await session_is_live(browser, rp)


async def test_a_cross_site_post_without_the_session_cookie_asks_first(
    app: FastRouter, browser: httpx.AsyncClient, rp: App
) -> None:
    """An RP's POST is cross-site: the Lax session cookie does not come with it, so the
    server cannot see the session and asks (the confirmation's own POST carries it)."""
    tokens = await signed_in(browser, rp)
    session_cookie = browser.cookies["oauth_session"]
    del browser.cookies["oauth_session"]
    page = await browser.post(
        "/oauth/logout",
        data={"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": LOGGED_OUT},
    )
    fields = await confirmation(page)
    browser.cookies.set("oauth_session", session_cookie, domain="testserver.local")
    done = await browser.post("/oauth/logout", data={**fields, "decision": "logout"})
    assert done.status_code == 303
    assert done.headers["location"] == LOGGED_OUT
    assert not await session_is_live(browser, rp)


async def test_no_session_is_not_an_error(browser: httpx.AsyncClient, rp: App) -> None:
    """§4: logout requests are idempotent."""
    response = await browser.get(
        "/oauth/logout",
        params={"client_id": rp.client_id, "post_logout_redirect_uri": LOGGED_OUT, "state": "s"},
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"{LOGGED_OUT}?state=s"
    plain = await browser.get("/oauth/logout")
    assert plain.status_code == 200
    assert "You are signed out" in plain.text


def _foreign_issuer_hint(app_svc: Services, user_id: str, client_id: str) -> str:
    issuer = IdTokenIssuer(app_svc.keys.ring, issuer="https://evil.example", ttl=300)
    return issuer.issue(
        user=_user(user_id),
        client_id=client_id,
        nonce=None,
        auth_time=0,
        sid=None,
        access_token=None,
        now=int(app_svc.clock.now()),
    )


def _foreign_key_hint(app_svc: Services, user_id: str, client_id: str) -> str:
    """Our issuer and a kid of ours, signed with someone else's key."""
    ours = app_svc.keys.ring.signing_key(app_svc.clock.now())
    now = int(app_svc.clock.now())
    claims = {
        "iss": app_svc.settings.public_issuer,
        "sub": user_id,
        "aud": client_id,
        "iat": now,
        "exp": now + 300,
    }
    header = {"typ": "JWT", "alg": ours.alg, "kid": ours.kid}
    return sign(claims, header, key=make_key(ours.kid, ours.alg))


def _user(user_id: str) -> User:
    return User(user_id=user_id, username="alice", password_hash="x")


@pytest.mark.parametrize(
    "case",
    [
        "unregistered_uri",
        "registered_redirect_uri_is_not_a_logout_uri",
        "uri_differs_in_case",
        "uri_with_trailing_slash",
        "uri_without_a_client",
        "uri_of_another_client",
        "unknown_client_id",
        "hint_for_another_client",
        "hint_of_another_issuer",
        "hint_signed_by_another_key",
        "hint_alg_none",
        "hint_tampered",
        "hint_is_an_access_token",
        "hint_garbage",
        "repeated_parameter",
    ],
)
async def test_a_request_that_does_not_check_out_gets_an_error_page(
    browser: httpx.AsyncClient,
    app_svc: Services,
    rp: App,
    other_rp: App,
    user_id: str,
    case: str,
) -> None:
    tokens = await signed_in(browser, rp)
    hint = tokens["id_token"]
    with_client = {"client_id": rp.client_id}
    cases: dict[str, dict[str, str] | list[tuple[str, str]]] = {
        "unregistered_uri": {**with_client, "post_logout_redirect_uri": "https://evil.example/"},
        "registered_redirect_uri_is_not_a_logout_uri": {
            **with_client,
            "post_logout_redirect_uri": rp.redirect_uri,
        },
        "uri_differs_in_case": {**with_client, "post_logout_redirect_uri": LOGGED_OUT.upper()},
        "uri_with_trailing_slash": {**with_client, "post_logout_redirect_uri": LOGGED_OUT + "/"},
        "uri_without_a_client": {"post_logout_redirect_uri": LOGGED_OUT},
        "uri_of_another_client": {
            "id_token_hint": hint,
            "post_logout_redirect_uri": "https://other.example/bye",
        },
        "unknown_client_id": {"client_id": "no-such-client"},
        "hint_for_another_client": {"id_token_hint": hint, "client_id": other_rp.client_id},
        "hint_of_another_issuer": {
            "id_token_hint": _foreign_issuer_hint(app_svc, user_id, rp.client_id)
        },
        "hint_signed_by_another_key": {
            "id_token_hint": _foreign_key_hint(app_svc, user_id, rp.client_id)
        },
        "hint_alg_none": {"id_token_hint": alg_none()},
        "hint_tampered": {
            "id_token_hint": swap_payload(
                hint,
                {
                    **pyjwt.decode(hint, options={"verify_signature": False}),
                    "aud": other_rp.client_id,
                },
            )
        },
        "hint_is_an_access_token": {"id_token_hint": tokens["access_token"]},
        "hint_garbage": {"id_token_hint": "not-a-jwt"},
        "repeated_parameter": [("client_id", rp.client_id), ("client_id", rp.client_id)],
    }
    params = cases[case]
    pairs = list(params.items()) if isinstance(params, dict) else params
    query = "&".join(str(httpx.QueryParams({k: v})) for k, v in pairs)
    response = await browser.get(f"/oauth/logout?{query}")
    assert_error_page(response)
    assert await session_is_live(browser, rp)  # nothing changed


async def test_logout_revokes_the_sessions_refresh_tokens_but_not_offline_access(
    browser: httpx.AsyncClient, app_svc: Services, rp: App
) -> None:
    """The rule (README): a refresh token granted ``offline_access`` outlives the browser
    session; every other refresh token of the session ends with it, with its access tokens."""
    online = await signed_in(browser, rp, scope="restaurants:read")  # OAuth, no openid
    offline = await signed_in(browser, rp, scope="openid offline_access")
    assert "refresh_token" in online
    assert "refresh_token" in offline
    hint = offline["id_token"]
    response = await browser.get("/oauth/logout", params={"id_token_hint": hint})
    assert response.status_code == 200
    assert "You are signed out" in response.text

    async def refresh(token: str) -> httpx.Response:
        return await browser.post(
            "/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": token, "client_id": rp.client_id},
        )

    refused = await refresh(online["refresh_token"])
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"
    api = await browser.get(
        "/api/restaurants", headers={"Authorization": f"Bearer {online['access_token']}"}
    )
    assert api.status_code == 401  # the family's access token is voided too
    kept = await refresh(offline["refresh_token"])
    assert kept.status_code == 200, kept.text
