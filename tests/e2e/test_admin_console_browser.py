"""An administrator uses the console in a real browser: headless Chromium (Debian's
``/usr/bin/chromium`` through Playwright's Python package) against a real server process.

The admin opens ``/admin``, is sent to the sign-in form, signs in and lands on the clients
page; creates a confidential ``client_credentials`` client, copies its secret from the page
and gets a token with it; opens the users and keys pages. Screenshots of the clients list,
the secret page, the users, keys and audit pages at desktop and phone widths are kept in
``tests/artifacts/screenshots/``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.browser import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, cli, sqlite_server
from tests.conftest import unavailable
from tests.process import ServerProcess
from tests.signin import PASSWORD, USERNAME

pytestmark = pytest.mark.slow

ADMIN = "root"
ADMIN_PASSWORD = "the admin's long password 7"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with sqlite_server(tmp_path) as process:
        cli(
            process,
            "users",
            "create",
            ADMIN,
            "--admin",
            "--password-stdin",
            stdin=ADMIN_PASSWORD + "\n",
        )
        cli(
            process,
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
        yield process


def test_an_admin_creates_a_client_and_uses_its_secret(server: ServerProcess) -> None:
    if not CHROMIUM.exists():
        unavailable("/usr/bin/chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import Page, sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def shoot(page: Page, name: str) -> None:
        page.screenshot(path=str(SCREENSHOTS / f"{name}-desktop.png"), full_page=True)
        page.set_viewport_size({"width": 390, "height": 844})
        page.screenshot(path=str(SCREENSHOTS / f"{name}-phone.png"), full_page=True)
        page.set_viewport_size({"width": 1280, "height": 900})

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.goto(f"{server.url}/admin")
            page.wait_for_url("**/account/login?return=/admin")
            page.get_by_label("Username").fill(ADMIN)
            page.get_by_label("Password", exact=True).fill(ADMIN_PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url("**/admin/clients")

            page.locator("#name").fill("Billing robot")
            page.locator("#scopes").fill("restaurants:read")
            page.get_by_role("button", name="Create client").click()
            page.wait_for_url("**/admin/clients/create")
            assert "shown this once" in page.inner_text("main")
            client_id = page.inner_text("#client-id")
            secret = page.inner_text("#client-secret")
            shoot(page, "admin-secret")

            answer = httpx.post(
                f"{server.url}/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(client_id, secret),
            )
            assert answer.status_code == 200, answer.text
            bearer = {"Authorization": f"Bearer {answer.json()['access_token']}"}
            assert httpx.get(f"{server.url}/api/restaurants", headers=bearer).status_code == 200

            page.get_by_role("link", name="Back to clients").click()
            page.wait_for_url("**/admin/clients")
            assert "Billing robot" in page.inner_text("main")
            assert secret not in page.content()
            shoot(page, "admin-clients")

            page.get_by_role("link", name="Users").click()
            page.wait_for_url("**/admin/users")
            assert "Alice Example" in page.inner_text("main")
            shoot(page, "admin-users")

            page.get_by_role("link", name="Signing keys").click()
            page.wait_for_url("**/admin/keys")
            assert "active" in page.inner_text("main")
            shoot(page, "admin-keys")

            page.get_by_role("link", name="Audit events").click()
            page.wait_for_url("**/admin/audit")
            shoot(page, "admin-audit")
            context.close()
        finally:
            browser.close()
