"""A real browser signs in: headless Chromium (Debian's ``/usr/bin/chromium``, driven by
Playwright's Python package; no browser is ever downloaded) against a real server process.

It signs in as a user, consents, and lands on the app's callback (a tiny HTTP server in the
test, on a loopback redirect URI as a native app would register, RFC 8252 §7.3), then signs
out through the end-session endpoint's confirmation page. Screenshots of the login, consent,
error, expired, logout confirmation and signed-out pages are kept in
``tests/artifacts/screenshots/``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from tests.browser import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, app_callback, cli, sqlite_server
from tests.conftest import unavailable
from tests.process import ServerProcess
from tests.signin import PASSWORD, USERNAME, pkce_pair

pytestmark = pytest.mark.slow


@pytest.fixture
def callback() -> Iterator[tuple[str, list[str]]]:
    """The app's callback: a local HTTP server recording the paths it was sent to."""
    with app_callback() as found:
        yield found


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with sqlite_server(tmp_path) as process:
        yield process


@pytest.fixture
def client_id(server: ServerProcess, callback: tuple[str, list[str]]) -> str:
    cli(
        server,
        "users",
        "create",
        USERNAME,
        "--name",
        "Alice",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    created = json.loads(
        cli(
            server,
            "clients",
            "create",
            "--public",
            "--name",
            "Menu Planner",
            "--redirect-uri",
            callback[0],
            "--post-logout-redirect-uri",
            callback[0] + "/logged-out",
            "--scope",
            "openid profile restaurants:read",
            "--json",
        )
    )
    return str(created["client_id"])


def test_a_person_signs_in_consents_and_the_app_gets_a_code(
    server: ServerProcess, client_id: str, callback: tuple[str, list[str]]
) -> None:
    CALLBACK, landed = callback
    if not CHROMIUM.exists():
        unavailable("/usr/bin/chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    _, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": CALLBACK,
        "scope": "openid profile restaurants:read",
        "state": "xyz-123",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
        )
        try:
            context = browser.new_context(viewport={"width": 420, "height": 820})
            page = context.new_page()

            # Login page: labels name the fields; a wrong password gets the one message.
            page.goto(f"{server.url}/oauth/authorize?{urlencode(params)}")
            page.get_by_label("Username").fill(USERNAME)
            page.get_by_label("Password").fill("wrong password")
            page.get_by_role("button", name="Sign in").click()
            assert page.get_by_role("alert").inner_text() == "Wrong username or password"
            page.get_by_label("Password").fill(PASSWORD)
            page.screenshot(path=str(SCREENSHOTS / "login.png"), full_page=True)
            page.get_by_role("button", name="Sign in").click()

            # Consent page: the app's name and each scope in words.
            page.wait_for_url("**/consent**")
            assert "Menu Planner" in page.inner_text("main")
            assert "See your name and username" in page.inner_text("main")
            page.screenshot(path=str(SCREENSHOTS / "consent.png"), full_page=True)
            page.get_by_role("button", name="Allow").click()
            page.wait_for_url(f"{CALLBACK}**")
            query = {k: v[0] for k, v in parse_qs(urlsplit(landed[-1]).query).items()}
            assert query["state"] == "xyz-123"
            assert query["code"]
            assert "iss" in query

            # The session is in the database: after a server restart the same browser goes
            # straight back to the app, no page shown.
            server.stop()
            server.start()
            before = len(landed)
            page.goto(f"{server.url}/oauth/authorize?{urlencode(params)}")
            page.wait_for_url(f"{CALLBACK}**")
            assert len(landed) == before + 1
            assert "code" in parse_qs(urlsplit(landed[-1]).query)

            # The error page: an unregistered redirect URI is never followed.
            bad = {**params, "redirect_uri": "https://evil.example/cb"}
            page.goto(f"{server.url}/oauth/authorize?{urlencode(bad)}")
            assert "cannot be completed" in page.inner_text("h1")
            page.screenshot(path=str(SCREENSHOTS / "error.png"), full_page=True)

            # The expired page: the sign-in page opened in another browser (no binding cookie).
            fresh = {**params, "prompt": "login"}
            page.goto(f"{server.url}/oauth/authorize?{urlencode(fresh)}")
            login_url = page.url
            other = browser.new_context(viewport={"width": 420, "height": 820})
            elsewhere = other.new_page()
            elsewhere.goto(login_url)
            assert "expired" in elsewhere.inner_text("h1")
            elsewhere.screenshot(path=str(SCREENSHOTS / "expired.png"), full_page=True)
            elsewhere.get_by_role("link", name="Return to Menu Planner").click()
            elsewhere.wait_for_url(f"{CALLBACK}**")
            back = {k: v[0] for k, v in parse_qs(urlsplit(landed[-1]).query).items()}
            assert back["error"] == "access_denied"
            other.close()

            # Logout: the app sends the person to the end-session endpoint without an ID
            # token, so the server asks first (no CSRF logout), then sends them back.
            logout = {
                "client_id": client_id,
                "post_logout_redirect_uri": CALLBACK + "/logged-out",
                "state": "bye-1",
            }
            page.goto(f"{server.url}/oauth/logout?{urlencode(logout)}")
            assert page.inner_text("h1") == "Sign out of PythonOauthServer?"
            assert "Menu Planner" in page.inner_text("main")
            page.screenshot(path=str(SCREENSHOTS / "logout.png"), full_page=True)
            page.get_by_role("button", name="Sign out").click()
            page.wait_for_url(f"{CALLBACK}/logged-out**")
            back = {k: v[0] for k, v in parse_qs(urlsplit(landed[-1]).query).items()}
            assert urlsplit(landed[-1]).path == "/callback/logged-out"
            assert back == {"state": "bye-1"}
            # The signed-out page, and the session is gone: signing in asks for the password.
            page.goto(f"{server.url}/oauth/logout")
            assert page.inner_text("h1") == "You are signed out"
            page.screenshot(path=str(SCREENSHOTS / "signed_out.png"), full_page=True)
            page.goto(f"{server.url}/oauth/authorize?{urlencode(params)}")
            page.wait_for_url("**/login**")
            assert page.get_by_label("Password").is_visible()
            context.close()
        finally:
            browser.close()
