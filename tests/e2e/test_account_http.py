"""The account page through the ASGI app, on both databases, posting its forms as a browser
would: sign-in redirect and form (throttled, one failure message, CSRF), the apps list and
"Revoke access" (the app's refresh token gets invalid_grant, its access token 401 at the
restaurants API), id tampering that must not reach another user, sessions and "Sign out
everywhere", password change; every POST CSRF-protected and answered 303, every page no-store
with the sign-in pages' headers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from oauth_server.services import Services
from oauth_server.web.api import FastRouter
from tests.signin import (
    PASSWORD,
    REDIRECT_URI,
    USERNAME,
    account_login,
    browser_for,
    pkce_pair,
    query_of,
    read_form,
)

pytestmark = pytest.mark.asyncio

SCOPE = "openid profile offline_access restaurants:read"
BOB = "bob"
BOB_PASSWORD = "bob's long password 42"


@pytest.fixture
async def browser(app: FastRouter) -> AsyncIterator[httpx.AsyncClient]:
    async with browser_for(app) as http:
        yield http


@pytest.fixture
async def users(app_svc: Services) -> dict[str, str]:
    alice = await app_svc.accounts.create(USERNAME, PASSWORD, name="Alice Example")
    bob = await app_svc.accounts.create(BOB, BOB_PASSWORD, name="Bob")
    return {USERNAME: alice.user_id, BOB: bob.user_id}


@pytest.fixture
async def menu_app(app_svc: Services) -> str:
    new = await app_svc.registry.create(
        name="Menu Planner",
        grant_types=("authorization_code", "refresh_token"),
        scopes=("openid", "profile", "offline_access", "restaurants:read"),
        default_scopes=("openid",),
        client_type="public",
        redirect_uris=(REDIRECT_URI,),
    )
    return new.client.client_id


async def sign_in_to_app(
    http: httpx.AsyncClient, client_id: str, *, username: str = USERNAME, password: str = PASSWORD
) -> dict[str, str]:
    """The whole sign-in through the pages (login only when the browser has no session):
    authorize → login → consent → code → tokens."""
    verifier, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": SCOPE,
        "state": "s1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    step = await http.get("/oauth/authorize", params=params)
    assert step.status_code == 303, step.text
    location = step.headers["location"]
    if "/login" in location:
        page = await http.get(location)
        form = read_form(page.text)
        step = await http.post(
            form.actions[0],
            data={
                "csrf_token": form.fields["csrf_token"],
                "username": username,
                "password": password,
            },
        )
        assert step.status_code == 303, step.text
        location = step.headers["location"]
    if "/consent" in location:
        page = await http.get(location)
        form = read_form(page.text)
        step = await http.post(
            form.actions[0], data={"csrf_token": form.fields["csrf_token"], "decision": "allow"}
        )
        assert step.status_code == 303, step.text
        location = step.headers["location"]
    code = query_of(location)["code"]
    tokens = await http.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
            "client_id": client_id,
        },
    )
    assert tokens.status_code == 200, tokens.text
    body: dict[str, str] = tokens.json()
    assert "refresh_token" in body
    return body


async def account_csrf(http: httpx.AsyncClient) -> str:
    page = await http.get("/account")
    assert page.status_code == 200, page.text
    return read_form(page.text).fields["csrf_token"]


async def refresh(http: httpx.AsyncClient, client_id: str, token: str) -> httpx.Response:
    return await http.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": token, "client_id": client_id},
    )


def assert_page_headers(response: httpx.Response) -> None:
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-frame-options"] == "DENY"
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert "form-action 'self';" in csp  # no other origin: every form posts here
    assert response.headers["referrer-policy"] == "no-referrer"


# --- Signing in -------------------------------------------------------------------------------


async def test_not_signed_in_goes_to_the_sign_in_form(browser: httpx.AsyncClient) -> None:
    page = await browser.get("/account")
    assert page.status_code == 303
    assert page.headers["location"] == "/account/login"
    assert page.headers["cache-control"] == "no-store"
    form_page = await browser.get("/account/login")
    assert form_page.status_code == 200
    assert_page_headers(form_page)
    form = read_form(form_page.text)
    assert {"csrf_token", "username", "password"} <= form.fields.keys()
    # The login-CSRF token is bound to a browser cookie set with the form.
    assert any(c.startswith("oauth_browser=") for c in form_page.headers.get_list("set-cookie"))


async def test_the_sign_in_form_starts_a_session_and_shows_the_account(
    browser: httpx.AsyncClient, users: dict[str, str]
) -> None:
    signed_in = await account_login(browser)
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/account"
    cookie = next(
        c for c in signed_in.headers.get_list("set-cookie") if c.startswith("oauth_session=")
    )
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    page = await browser.get("/account")
    assert page.status_code == 200
    assert_page_headers(page)
    assert "Alice Example" in page.text
    assert "This browser" in page.text
    assert "Firefox on Linux" in page.text  # the session's stored User-Agent, named
    assert "No app has access to your account." in page.text
    assert (await browser.get("/account/login")).headers["location"] == "/account"


async def test_the_sign_in_form_has_one_message_for_every_failure(
    browser: httpx.AsyncClient, users: dict[str, str]
) -> None:
    wrong = await account_login(browser, password="not the password")
    unknown = await account_login(browser, username="nobody", password="whatever it is")
    for failed in (wrong, unknown):
        assert failed.status_code == 400
        assert "Wrong username or password" in failed.text
        assert "oauth_session=" not in failed.headers.get("set-cookie", "")
    assert (await browser.get("/account")).status_code == 303


@pytest.mark.parametrize("csrf", [None, "", "forged-token"])
async def test_the_sign_in_form_refuses_a_post_without_its_csrf_token(
    browser: httpx.AsyncClient, users: dict[str, str], csrf: str | None
) -> None:
    await browser.get("/account/login")  # the browser cookie exists; the token does not match
    data = {"username": USERNAME, "password": PASSWORD}
    if csrf is not None:
        data["csrf_token"] = csrf
    refused = await browser.post("/account/login", data=data)
    assert refused.status_code == 403
    assert "oauth_session=" not in refused.headers.get("set-cookie", "")


async def test_a_token_from_another_browser_does_not_sign_this_one_in(
    app: FastRouter, users: dict[str, str]
) -> None:
    async with browser_for(app) as attacker, browser_for(app) as victim:
        page = await attacker.get("/account/login")
        token = read_form(page.text).fields["csrf_token"]
        await victim.get("/account/login")  # its own browser cookie
        refused = await victim.post(
            "/account/login",
            data={"csrf_token": token, "username": USERNAME, "password": PASSWORD},
        )
        assert refused.status_code == 403


async def test_failed_sign_ins_are_throttled_alike_for_known_and_unknown_users(
    app: FastRouter, app_svc: Services, users: dict[str, str]
) -> None:
    assert app_svc.limiter is not None
    await app_svc.limiter.reset()
    limit = int(app_svc.settings.rate_limit_login_failures_per_username.split("/")[0])
    answers = {}
    for username in (USERNAME, "no-such-user"):
        async with browser_for(app) as http:
            for _ in range(limit):
                assert (await account_login(http, username=username, password="x")).status_code == (
                    400
                )
            answers[username] = await account_login(http, username=username, password=PASSWORD)
    known, unknown = answers[USERNAME], answers["no-such-user"]
    assert known.status_code == unknown.status_code == 429
    assert known.headers["retry-after"]
    assert "oauth_session=" not in known.headers.get("set-cookie", "")


# --- Apps -------------------------------------------------------------------------------------


async def test_revoking_an_app_ends_its_refresh_and_access_tokens(
    browser: httpx.AsyncClient, app_svc: Services, users: dict[str, str], menu_app: str
) -> None:
    tokens = await sign_in_to_app(browser, menu_app)
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (await browser.get("/api/restaurants", headers=bearer)).status_code == 200
    page = await browser.get("/account")
    assert "Menu Planner" in page.text
    assert "Read the restaurant list" in page.text  # the granted scopes, in words
    csrf = read_form(page.text).fields["csrf_token"]

    revoked = await browser.post(
        "/account/apps/revoke", data={"csrf_token": csrf, "client_id": menu_app}
    )
    assert revoked.status_code == 303
    assert revoked.headers["location"] == "/account?done=revoked"
    assert revoked.headers["cache-control"] == "no-store"

    refused = await refresh(browser, menu_app, tokens["refresh_token"])
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"
    api = await browser.get("/api/restaurants", headers=bearer)
    assert api.status_code == 401
    assert 'error="invalid_token"' in api.headers["www-authenticate"]
    assert await app_svc.storage.consents.get(user_id=users[USERNAME], client_id=menu_app) is None
    after = await browser.get("/account?done=revoked")
    assert "Menu Planner" not in after.text
    assert "The app&#39;s access was revoked" in after.text
    # The next sign-in asks for consent again.
    _, challenge = pkce_pair()
    step = await browser.get(
        "/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": menu_app,
            "redirect_uri": REDIRECT_URI,
            "scope": SCOPE,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
    )
    assert "/consent" in step.headers["location"]


async def test_another_users_app_cannot_be_revoked_by_changing_the_id(
    app: FastRouter, users: dict[str, str], menu_app: str
) -> None:
    async with browser_for(app) as bob, browser_for(app) as alice:
        bobs = await sign_in_to_app(bob, menu_app, username=BOB, password=BOB_PASSWORD)
        assert (await account_login(alice)).status_code == 303
        csrf = await account_csrf(alice)
        # Alice has no grant for the app; the form's client id names Bob's.
        tampered = await alice.post(
            "/account/apps/revoke", data={"csrf_token": csrf, "client_id": menu_app}
        )
        assert tampered.status_code == 303
        still = await refresh(bob, menu_app, bobs["refresh_token"])
        assert still.status_code == 200, still.text
        assert "Menu Planner" in (await bob.get("/account")).text


async def test_another_users_session_cannot_be_ended_by_changing_the_id(
    app: FastRouter, app_svc: Services, users: dict[str, str]
) -> None:
    async with browser_for(app) as bob, browser_for(app) as alice:
        assert (await account_login(bob, username=BOB, password=BOB_PASSWORD)).status_code == 303
        (bobs,) = await app_svc.account_access.list_sessions(user_id=users[BOB])
        assert (await account_login(alice)).status_code == 303
        csrf = await account_csrf(alice)
        tampered = await alice.post(
            "/account/sessions/end", data={"csrf_token": csrf, "session_id": bobs.session_id}
        )
        assert tampered.status_code == 303
        assert (await bob.get("/account")).status_code == 200
        assert (await alice.get("/account")).status_code == 200


ACCOUNT_POSTS = [
    ("/account/apps/revoke", {"client_id": "CLIENT"}),
    ("/account/sessions/end", {"session_id": "SESSION"}),
    ("/account/sessions/end-all", {}),
    ("/account/password", {"current_password": PASSWORD, "new_password": "n" * 12}),
    ("/account/logout", {}),
]


@pytest.mark.parametrize("csrf", [None, "", "forged-token", "OTHER_SESSION"])
@pytest.mark.parametrize(("path", "fields"), ACCOUNT_POSTS)
async def test_every_account_post_needs_its_csrf_token(
    app: FastRouter,
    app_svc: Services,
    users: dict[str, str],
    menu_app: str,
    path: str,
    fields: dict[str, str],
    csrf: str | None,
) -> None:
    async with browser_for(app) as http, browser_for(app) as other:
        tokens = await sign_in_to_app(http, menu_app)
        (mine,) = await app_svc.account_access.list_sessions(user_id=users[USERNAME])
        assert (await account_login(other)).status_code == 303
        (theirs,) = [
            s
            for s in await app_svc.account_access.list_sessions(user_id=users[USERNAME])
            if s.session_id != mine.session_id
        ]
        data = {
            key: {"CLIENT": menu_app, "SESSION": theirs.session_id}.get(value, value)
            for key, value in fields.items()
        }
        if csrf == "OTHER_SESSION":  # a real token, of the same user's other session
            data["csrf_token"] = await account_csrf(other)
        elif csrf is not None:
            data["csrf_token"] = csrf
        refused = await http.post(path, data=data)
        assert refused.status_code == 403
        assert refused.headers["cache-control"] == "no-store"
        # Nothing changed: the grant, both sessions and the password are as they were.
        assert (await refresh(http, menu_app, tokens["refresh_token"])).status_code == 200
        assert len(await app_svc.account_access.list_sessions(user_id=users[USERNAME])) == 2
        assert (await app_svc.accounts.authenticate(USERNAME, PASSWORD)).user_id == users[USERNAME]


async def test_a_post_without_a_session_goes_to_sign_in_and_changes_nothing(
    browser: httpx.AsyncClient, users: dict[str, str]
) -> None:
    for path, _ in ACCOUNT_POSTS:
        answer = await browser.post(path, data={"csrf_token": "x"})
        assert answer.status_code == 303
        assert answer.headers["location"] == "/account/login"


# --- Sessions ---------------------------------------------------------------------------------


async def test_sign_out_everywhere_ends_every_session_but_keeps_apps(
    app: FastRouter, users: dict[str, str], menu_app: str
) -> None:
    async with browser_for(app) as laptop, browser_for(app) as phone:
        tokens = await sign_in_to_app(laptop, menu_app)
        assert (await account_login(phone)).status_code == 303
        page = await laptop.get("/account")
        assert page.text.count("Last seen") == 2
        out = await laptop.post(
            "/account/sessions/end-all",
            data={"csrf_token": read_form(page.text).fields["csrf_token"]},
        )
        assert out.status_code == 303
        assert out.headers["location"] == "/account/login?done=signed-out-everywhere"
        assert any(c.startswith("oauth_session=;") for c in out.headers.get_list("set-cookie"))
        for http in (laptop, phone):
            assert (await http.get("/account")).headers["location"] == "/account/login"
        # Documented: signing out is not revoking an app; its refresh token still works.
        assert (await refresh(laptop, menu_app, tokens["refresh_token"])).status_code == 200


async def test_one_session_can_be_signed_out_from_another(
    app: FastRouter, app_svc: Services, users: dict[str, str]
) -> None:
    async with browser_for(app) as laptop, browser_for(app) as phone:
        assert (await account_login(laptop)).status_code == 303
        assert (await account_login(phone)).status_code == 303
        page = await laptop.get("/account")
        form = read_form(page.text)
        sessions = await app_svc.account_access.list_sessions(user_id=users[USERNAME])
        # The only session form on the laptop's page is for the other browser.
        other = form.fields["session_id"]
        assert other in {s.session_id for s in sessions}
        ended = await laptop.post(
            "/account/sessions/end",
            data={"csrf_token": form.fields["csrf_token"], "session_id": other},
        )
        assert ended.headers["location"] == "/account?done=session-ended"
        assert (await phone.get("/account")).status_code == 303
        assert (await laptop.get("/account")).status_code == 200


async def test_sign_out_ends_this_session_only(app: FastRouter, users: dict[str, str]) -> None:
    async with browser_for(app) as laptop, browser_for(app) as phone:
        assert (await account_login(laptop)).status_code == 303
        assert (await account_login(phone)).status_code == 303
        out = await laptop.post("/account/logout", data={"csrf_token": await account_csrf(laptop)})
        assert out.headers["location"] == "/account/login?done=signed-out"
        assert (await laptop.get("/account")).status_code == 303
        assert (await phone.get("/account")).status_code == 200


# --- Password ---------------------------------------------------------------------------------

NEW_PASSWORD = "a brand new passphrase"


async def _change(
    http: httpx.AsyncClient, current: str, new: str, confirm: str | None = None
) -> httpx.Response:
    return await http.post(
        "/account/password",
        data={
            "csrf_token": await account_csrf(http),
            "current_password": current,
            "new_password": new,
            "confirm_password": new if confirm is None else confirm,
        },
    )


async def test_changing_the_password_keeps_this_browser_and_ends_the_rest(
    app: FastRouter, app_svc: Services, users: dict[str, str], menu_app: str
) -> None:
    async with browser_for(app) as laptop, browser_for(app) as phone:
        tokens = await sign_in_to_app(laptop, menu_app)
        assert (await account_login(phone)).status_code == 303
        changed = await _change(laptop, PASSWORD, NEW_PASSWORD)
        assert changed.status_code == 303
        assert changed.headers["location"] == "/account?done=password-changed"
        assert any(c.startswith("oauth_session=") for c in changed.headers.get_list("set-cookie"))
        assert (await laptop.get("/account")).status_code == 200  # a fresh session
        assert (await phone.get("/account")).status_code == 303
        refused = await refresh(laptop, menu_app, tokens["refresh_token"])
        assert refused.json()["error"] == "invalid_grant"
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert (await laptop.get("/api/restaurants", headers=bearer)).status_code == 401
        assert (await account_login(phone)).status_code == 400  # the old password is gone
        assert (await account_login(phone, password=NEW_PASSWORD)).status_code == 303


@pytest.mark.parametrize(
    ("current", "new", "confirm", "message"),
    [
        ("not my password", NEW_PASSWORD, None, "The current password is wrong."),
        (PASSWORD, NEW_PASSWORD, "something else", "The new passwords do not match."),
        (PASSWORD, "short", None, "A password must be at least 8 characters."),
    ],
)
async def test_a_refused_password_change_says_why_and_changes_nothing(
    browser: httpx.AsyncClient,
    app_svc: Services,
    users: dict[str, str],
    current: str,
    new: str,
    confirm: str | None,
    message: str,
) -> None:
    assert (await account_login(browser)).status_code == 303
    refused = await _change(browser, current, new, confirm)
    assert refused.status_code == 400
    assert message in refused.text
    assert_page_headers(refused)
    assert (await browser.get("/account")).status_code == 200  # still signed in
    assert (await app_svc.accounts.authenticate(USERNAME, PASSWORD)).user_id == users[USERNAME]


async def test_guessing_the_current_password_spends_the_login_budget(
    browser: httpx.AsyncClient, app_svc: Services, users: dict[str, str]
) -> None:
    assert app_svc.limiter is not None
    await app_svc.limiter.reset()
    assert (await account_login(browser)).status_code == 303
    limit = int(app_svc.settings.rate_limit_login_failures_per_username.split("/")[0])
    for _ in range(limit):
        assert (await _change(browser, "a wrong guess", NEW_PASSWORD)).status_code == 400
    locked = await _change(browser, PASSWORD, NEW_PASSWORD)  # even the right one, now
    assert locked.status_code == 429
    assert locked.headers["retry-after"]
    assert "Too many failed attempts" in locked.text
    assert (await app_svc.accounts.authenticate(USERNAME, PASSWORD)).user_id == users[USERNAME]
    await app_svc.limiter.reset()
