"""The sign-in flow through the ASGI app, posting the pages' forms as a browser would, on both
databases: authorize → login → consent → redirect with a code whose stored row carries every
binding; deny, CSRF, lost and expired interactions, remembered consent, session reuse,
prompt and max_age, login throttling."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
import pytest

from oauth_server.clock import FrozenClock
from oauth_server.services import Services
from oauth_server.web.api import FastRouter
from tests.signin import (
    PASSWORD,
    USERNAME,
    App,
    consume_code,
    ensure_user,
    pkce_pair,
    query_of,
    read_form,
    register_app,
)
from tests.signin import (
    authorize_page as _authorize,
)
from tests.signin import (
    consent as _consent,
)
from tests.signin import (
    full_flow as _full_flow,
)
from tests.signin import (
    login as _login,
)
from tests.signin import (
    signin_http_params as _params,
)

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def user_id(app_svc: Services) -> str:
    return await ensure_user(app_svc)


@pytest.fixture
async def test_app(app_svc: Services) -> App:
    return await register_app(app_svc)


@pytest.fixture
async def browser(app: FastRouter) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def test_login_and_consent_give_a_code_bound_to_the_request(
    browser: httpx.AsyncClient, app_svc: Services, test_app: App, user_id: str
) -> None:
    _, challenge = pkce_pair()
    location = await _full_flow(browser, test_app, challenge, resource=app_svc.settings.resource_id)
    assert location.startswith(test_app.redirect_uri + "?")
    query = query_of(location)
    assert query["state"] == "st-1 &x=y"  # echoed exactly
    assert query["iss"] == app_svc.settings.public_issuer  # RFC 9207
    redemption = await consume_code(app_svc, query["code"])
    assert redemption is not None
    assert redemption.outcome == "consumed"
    code = redemption.code
    assert code.client_id == test_app.client_id
    assert code.redirect_uri == test_app.redirect_uri
    assert code.user_id == user_id
    assert code.scope == "openid restaurants:read"
    assert (code.code_challenge, code.code_challenge_method) == (challenge, "S256")
    assert code.nonce == "n-42"
    assert code.resource == app_svc.settings.resource_id
    assert code.session_id
    assert code.auth_time == int(app_svc.clock.now())
    assert code.expires_at - code.issued_at == app_svc.settings.authorization_code_ttl


async def test_session_cookie_attributes(
    browser: httpx.AsyncClient, test_app: App, user_id: str
) -> None:
    _, challenge = pkce_pair()
    login = await _login(browser, await _authorize(browser, test_app, challenge))
    cookie = next(c for c in login.headers.get_list("set-cookie") if c.startswith("oauth_session="))
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Path=/" in cookie


async def test_deny_redirects_with_access_denied(
    browser: httpx.AsyncClient, app_svc: Services, test_app: App, user_id: str
) -> None:
    _, challenge = pkce_pair()
    login = await _login(browser, await _authorize(browser, test_app, challenge))
    denied = await _consent(browser, login.headers["location"], "deny")
    assert denied.status_code == 303
    query = query_of(denied.headers["location"])
    assert query["error"] == "access_denied"
    assert query["state"] == "st-1 &x=y"
    assert query["iss"] == app_svc.settings.public_issuer
    assert "code" not in query


async def test_wrong_password_shows_one_message_for_every_failure(
    browser: httpx.AsyncClient, test_app: App, user_id: str
) -> None:
    _, challenge = pkce_pair()
    page_url = await _authorize(browser, test_app, challenge)
    wrong = await _login(browser, page_url, password="not the password")
    assert wrong.status_code == 400
    assert "Wrong username or password" in wrong.text
    page = await browser.get(page_url)
    form = read_form(page.text)
    unknown = await browser.post(
        form.actions[0],
        data={"csrf_token": form.fields["csrf_token"], "username": "nobody", "password": "x"},
    )
    assert unknown.status_code == wrong.status_code
    assert "Wrong username or password" in unknown.text


@pytest.mark.parametrize("csrf", [None, "", "forged-token"])
async def test_login_without_the_right_csrf_token_is_refused(
    browser: httpx.AsyncClient, test_app: App, user_id: str, csrf: str | None
) -> None:
    _, challenge = pkce_pair()
    page_url = await _authorize(browser, test_app, challenge)
    page = await browser.get(page_url)
    data = {"username": USERNAME, "password": PASSWORD}
    if csrf is not None:
        data["csrf_token"] = csrf
    refused = await browser.post(read_form(page.text).actions[0], data=data)
    assert refused.status_code == 403
    assert "oauth_session" not in refused.headers.get("set-cookie", "")


async def test_consent_without_the_right_csrf_token_is_refused(
    browser: httpx.AsyncClient, test_app: App, user_id: str
) -> None:
    _, challenge = pkce_pair()
    login = await _login(browser, await _authorize(browser, test_app, challenge))
    page = await browser.get(login.headers["location"])
    refused = await browser.post(
        read_form(page.text).actions[0], data={"csrf_token": "x", "decision": "allow"}
    )
    assert refused.status_code == 403


async def test_interaction_from_another_browser_is_lost_with_a_way_back(
    browser: httpx.AsyncClient, app: FastRouter, test_app: App, user_id: str
) -> None:
    _, challenge = pkce_pair()
    page_url = await _authorize(browser, test_app, challenge)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        lost = await other.get(page_url)
    assert lost.status_code == 400
    assert "This sign-in has expired" in lost.text
    assert "session not found" not in lost.text.lower()
    assert "Return to Menu Planner" in lost.text
    assert "error=access_denied" in lost.text
    assert "https://app.example/callback?error=access_denied" in lost.text


async def test_expired_interaction_shows_the_expired_page(
    browser: httpx.AsyncClient,
    app_svc: Services,
    clock: FrozenClock,
    test_app: App,
    user_id: str,
) -> None:
    _, challenge = pkce_pair()
    page_url = await _authorize(browser, test_app, challenge)
    page = await browser.get(page_url)
    form = read_form(page.text)
    clock.advance(app_svc.settings.interaction_ttl + 1)
    late = await browser.post(
        form.actions[0],
        data={"csrf_token": form.fields["csrf_token"], "username": USERNAME, "password": PASSWORD},
    )
    assert late.status_code == 400
    assert "This sign-in has expired" in late.text
    assert "oauth_session" not in late.headers.get("set-cookie", "")


async def test_remembered_consent_and_session_skip_both_pages(
    browser: httpx.AsyncClient, app_svc: Services, test_app: App, user_id: str
) -> None:
    _, challenge = pkce_pair()
    await _full_flow(browser, test_app, challenge)
    again = await browser.get("/oauth/authorize", params=_params(test_app, challenge))
    assert again.status_code == 303
    assert "code" in query_of(again.headers["location"])
    # A new scope is asked for, and only it.
    more = await _authorize(browser, test_app, challenge, scope="openid profile")
    assert "/consent" in more
    page = await browser.get(more)
    assert "profile" in page.text
    assert "restaurants:read" not in page.text


async def test_prompt_login_forces_a_new_login_despite_the_session(
    browser: httpx.AsyncClient, test_app: App, user_id: str
) -> None:
    _, challenge = pkce_pair()
    await _full_flow(browser, test_app, challenge)
    forced = await _authorize(browser, test_app, challenge, prompt="login")
    assert "/login" in urlsplit(forced).path


async def test_max_age_forces_login_when_the_session_is_older(
    browser: httpx.AsyncClient, clock: FrozenClock, test_app: App, user_id: str
) -> None:
    _, challenge = pkce_pair()
    await _full_flow(browser, test_app, challenge)
    clock.advance(120)
    fresh_enough = await browser.get(
        "/oauth/authorize", params=_params(test_app, challenge, max_age="600")
    )
    assert "code" in query_of(fresh_enough.headers["location"])
    too_old = await _authorize(browser, test_app, challenge, max_age="60")
    assert "/login" in urlsplit(too_old).path


async def test_prompt_none_without_a_session_is_login_required(
    browser: httpx.AsyncClient, app_svc: Services, test_app: App
) -> None:
    _, challenge = pkce_pair()
    location = await _authorize(browser, test_app, challenge, prompt="none")
    query = query_of(location)
    assert query["error"] == "login_required"
    assert query["iss"] == app_svc.settings.public_issuer


async def test_prompt_none_with_a_session_but_no_consent_is_consent_required(
    browser: httpx.AsyncClient, test_app: App, user_id: str
) -> None:
    _, challenge = pkce_pair()
    await _full_flow(browser, test_app, challenge)
    location = await _authorize(browser, test_app, challenge, prompt="none", scope="profile")
    assert query_of(location)["error"] == "consent_required"


async def test_client_without_consent_skips_the_consent_page(
    browser: httpx.AsyncClient, app_svc: Services, user_id: str
) -> None:
    first_party = await register_app(app_svc, name="First party", require_consent=False)
    _, challenge = pkce_pair()
    login = await _login(browser, await _authorize(browser, first_party, challenge))
    assert login.status_code == 303
    assert "code" in query_of(login.headers["location"])


async def test_form_post_answers_with_a_self_posting_page(
    browser: httpx.AsyncClient, app_svc: Services, user_id: str
) -> None:
    first_party = await register_app(app_svc, name="First party", require_consent=False)
    _, challenge = pkce_pair()
    page_url = await _authorize(browser, first_party, challenge, response_mode="form_post")
    login = await _login(browser, page_url)
    assert login.status_code == 200
    form = read_form(login.text)
    assert form.actions == [first_party.redirect_uri]
    assert form.fields["code"]
    assert form.fields["state"] == "st-1 &x=y"
    assert form.fields["iss"] == app_svc.settings.public_issuer
    assert "form-action https://app.example" in login.headers["content-security-policy"]


async def test_unknown_client_is_a_page_never_a_redirect(browser: httpx.AsyncClient) -> None:
    _, challenge = pkce_pair()
    response = await browser.get(
        "/oauth/authorize", params=_params(App("no-such-client"), challenge)
    )
    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["x-frame-options"] == "DENY"


async def test_pages_carry_the_security_headers(browser: httpx.AsyncClient, test_app: App) -> None:
    _, challenge = pkce_pair()
    page = await browser.get(await _authorize(browser, test_app, challenge))
    headers = page.headers
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "no-store"
    csp = headers["content-security-policy"]
    for directive in ("frame-ancestors 'none'", "default-src 'none'", "style-src 'self'"):
        assert directive in csp
    assert "form-action 'self' https://app.example" in csp
    form = read_form(page.text)
    assert {"username", "password"} <= set(form.labels)
    assert 'lang="en"' in page.text
    assert 'name="viewport"' in page.text
    stylesheet = page.text.split('rel="stylesheet" href="')[1].split('"')[0]
    css = await browser.get(stylesheet)
    assert css.status_code == 200
    assert "immutable" in css.headers["cache-control"]
    assert (await browser.get("/static/other.css")).status_code == 404


async def test_login_hint_prefills_the_username(browser: httpx.AsyncClient, test_app: App) -> None:
    _, challenge = pkce_pair()
    page = await browser.get(await _authorize(browser, test_app, challenge, login_hint="bob"))
    assert read_form(page.text).fields["username"] == "bob"


async def test_failed_logins_are_throttled_alike_for_known_and_unknown_users(
    app: FastRouter, app_svc: Services, test_app: App, user_id: str
) -> None:
    assert app_svc.limiter is not None
    await app_svc.limiter.reset()
    limit = int(app_svc.settings.rate_limit_login_failures_per_username.split("/")[0])
    pages: dict[str, httpx.Response] = {}
    for username in (USERNAME, "no-such-user"):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            _, challenge = pkce_pair()
            page_url = await _authorize(http, test_app, challenge)
            for _ in range(limit):
                page = await http.get(page_url)
                form = read_form(page.text)
                failed = await http.post(
                    form.actions[0],
                    data={
                        "csrf_token": form.fields["csrf_token"],
                        "username": username,
                        "password": "wrong",
                    },
                )
                assert failed.status_code == 400
            page = await http.get(page_url)
            form = read_form(page.text)
            # Locked: even the right password is refused, with the same page for both.
            pages[username] = await http.post(
                form.actions[0],
                data={
                    "csrf_token": form.fields["csrf_token"],
                    "username": username,
                    "password": PASSWORD,
                },
            )
    known, unknown = pages[USERNAME], pages["no-such-user"]
    assert known.status_code == unknown.status_code == 429
    assert "Too many failed attempts" in known.text

    def shape(response: httpx.Response, username: str) -> str:
        form = read_form(response.text)
        text = response.text.replace(form.fields["csrf_token"], "CSRF")
        return text.replace(form.actions[0].split("?")[0], "ACTION").replace(username, "USER")

    assert shape(known, USERNAME) == shape(unknown, "no-such-user")
    await app_svc.limiter.reset()


async def test_login_and_consent_are_audited(
    browser: httpx.AsyncClient, app_svc: Services, test_app: App, user_id: str
) -> None:
    _, challenge = pkce_pair()
    page_url = await _authorize(browser, test_app, challenge)
    await _login(browser, page_url, password="wrong")
    await _full_flow(browser, test_app, challenge)
    await app_svc.audit.flush()
    kinds = [record.kind for record in await app_svc.storage.audit.recent(limit=50)]
    for kind in ("login_failed", "login_succeeded", "consent_granted"):
        assert kind in kinds


async def test_the_login_page_offers_a_way_back_with_access_denied_and_state(
    browser: httpx.AsyncClient, app_svc: Services, test_app: App
) -> None:
    _, challenge = pkce_pair()
    page = await browser.get(await _authorize(browser, test_app, challenge))
    link = page.text.split('class="secondary-action"><a href="')[1].split('"')[0]
    query = query_of(link.replace("&amp;", "&"))
    assert link.startswith(test_app.redirect_uri + "?")
    assert query["error"] == "access_denied"
    assert query["state"] == "st-1 &x=y"
    assert query["iss"] == app_svc.settings.public_issuer
