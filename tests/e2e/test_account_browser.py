"""A real browser takes an app's access back: headless Chromium (Debian's
``/usr/bin/chromium`` through Playwright's Python package) against a real server process.

The person signs in to an app and consents; the app exchanges the code for tokens; the person
opens ``/account``, sees the app with what it may do, and clicks "Revoke access"; the app's
refresh token is then refused (``invalid_grant``) and its access token too (401 at the
restaurants API). Screenshots of the account page at desktop and phone widths, after the
revocation, and of its sign-in form are kept in ``tests/artifacts/screenshots/``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from tests.browser import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, app_callback, cli, sqlite_server
from tests.conftest import unavailable
from tests.process import ServerProcess
from tests.signin import PASSWORD, USERNAME, pkce_pair

pytestmark = pytest.mark.slow

SCOPE = "openid profile offline_access restaurants:read"


@pytest.fixture
def callback() -> Iterator[tuple[str, list[str]]]:
    with app_callback() as landing:
        yield landing


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with sqlite_server(tmp_path) as process:
        yield process


@pytest.fixture
def app_client_id(server: ServerProcess, callback: tuple[str, list[str]]) -> str:
    cli(
        server,
        "users",
        "create",
        USERNAME,
        "--name",
        "Alice Example",
        "--email",
        "alice@example.com",
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
            "--grant-type",
            "authorization_code",
            "--grant-type",
            "refresh_token",
            "--scope",
            SCOPE,
            "--json",
        )
    )
    return str(created["client_id"])


def _refused_by_the_api(server: ServerProcess, access_token: str) -> bool:
    answer = httpx.get(
        f"{server.url}/api/restaurants", headers={"Authorization": f"Bearer {access_token}"}
    )
    return answer.status_code == 401 and 'error="invalid_token"' in answer.headers.get(
        "www-authenticate", ""
    )


def test_a_person_revokes_an_app_from_the_account_page(
    server: ServerProcess, app_client_id: str, callback: tuple[str, list[str]]
) -> None:
    redirect_uri, landed = callback
    if not CHROMIUM.exists():
        unavailable("/usr/bin/chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    verifier, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": app_client_id,
        "redirect_uri": redirect_uri,
        "scope": SCOPE,
        "state": "st-9",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()

            # Sign in to the app and consent, as in the sign-in test.
            page.goto(f"{server.url}/oauth/authorize?{urlencode(params)}")
            page.get_by_label("Username").fill(USERNAME)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url("**/consent**")
            page.get_by_role("button", name="Allow").click()
            page.wait_for_url(f"{redirect_uri}**")
            code = parse_qs(urlsplit(landed[-1]).query)["code"][0]

            # The app gets its tokens, and they work.
            tokens = httpx.post(
                f"{server.url}/oauth/token",
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": redirect_uri,
                    "code_verifier": verifier,
                    "client_id": app_client_id,
                },
            ).json()
            assert "refresh_token" in tokens, tokens
            bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
            assert httpx.get(f"{server.url}/api/restaurants", headers=bearer).status_code == 200

            # The account page: the browser's session is already signed in.
            page.goto(f"{server.url}/account")
            main = page.inner_text("main")
            assert "Your account" in main
            assert "Alice Example" in main
            assert "Menu Planner" in main
            assert "Read the restaurant list" in main
            assert "This browser" in main
            page.screenshot(path=str(SCREENSHOTS / "account-desktop.png"), full_page=True)
            page.set_viewport_size({"width": 390, "height": 844})
            page.screenshot(path=str(SCREENSHOTS / "account-phone.png"), full_page=True)
            page.set_viewport_size({"width": 1280, "height": 900})

            page.get_by_role("button", name="Revoke access for Menu Planner").click()
            page.wait_for_url("**/account?done=revoked")
            assert "access was revoked" in page.get_by_role("status").inner_text()
            assert "No app has access to your account." in page.inner_text("main")
            page.screenshot(path=str(SCREENSHOTS / "account-revoked.png"), full_page=True)

            # The app's refresh token is refused, and so is its access token.
            refused = httpx.post(
                f"{server.url}/oauth/token",
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": tokens["refresh_token"],
                    "client_id": app_client_id,
                },
            )
            assert refused.status_code == 400
            assert refused.json()["error"] == "invalid_grant"
            # One worker: the process that revoked it refuses it at once (no feed to wait for).
            assert _refused_by_the_api(server, tokens["access_token"])

            # Another browser has no session: the account page asks it to sign in first.
            other = browser.new_context(viewport={"width": 390, "height": 844})
            elsewhere = other.new_page()
            elsewhere.goto(f"{server.url}/account")
            elsewhere.wait_for_url("**/account/login")
            assert "your account" in elsewhere.inner_text("main")
            elsewhere.screenshot(path=str(SCREENSHOTS / "account-login.png"), full_page=True)
            elsewhere.get_by_label("Username").fill(USERNAME)
            elsewhere.get_by_label("Password", exact=True).fill(PASSWORD)
            elsewhere.get_by_role("button", name="Sign in").click()
            elsewhere.wait_for_url("**/account")
            assert elsewhere.inner_text("main").count("Last seen") == 2  # both browsers
            other.close()
            context.close()
        finally:
            browser.close()
