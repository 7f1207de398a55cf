"""Node's openid-client v6 (OpenID Foundation certified relying party library) against a real
server process, unmodified and configured with nothing but the issuer URL: discovery, the
authorization URL with PKCE S256, state and nonce, the code exchange with its ID token
validation, userinfo and refresh. The person's part (login and consent) is done by posting the
real forms. The library is installed from ``tests/node/package-lock.json`` (``npm ci``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import unavailable
from tests.process import CLI, ServerProcess, free_port
from tests.signin import read_form

pytestmark = pytest.mark.slow

NODE_DIR = Path(__file__).resolve().parent.parent / "node"
SECRET = "openid-client-test-secret-key-0123456789"
USERNAME = "bob"
PASSWORD = "another long and correct password"
SCOPE = "openid profile email offline_access restaurants:read"
TIMEOUT = 20.0


@pytest.fixture(scope="module")
def node_client() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        unavailable("node and npm are needed for the openid-client test")
    assert npm is not None
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=NODE_DIR,
        check=True,
        capture_output=True,
        timeout=180,
    )
    return NODE_DIR / "flow.mjs"


@pytest.fixture
def server(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path
) -> Iterator[ServerProcess]:
    """A server process; a test marked ``server_env(NAME=value)`` adds to its environment."""
    port = free_port()
    marker = request.node.get_closest_marker("server_env")
    process = ServerProcess(
        {
            "OAUTH_SERVER_DATABASE_URL": database_url,
            "OAUTH_SERVER_SECRET_KEY": SECRET,
            # The issuer is the address the client reaches: the library checks it exactly.
            "OAUTH_SERVER_ISSUER": f"http://127.0.0.1:{port}",
            **(marker.kwargs if marker else {}),
        },
        port=port,
        log=tmp_path / "server.log",
    )
    try:
        yield process.start()
    finally:
        process.stop()


def cli(server: ServerProcess, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [CLI, *args], env=server.env, input=stdin, capture_output=True, text=True,
        check=True, timeout=60,
    )  # fmt: skip
    return done.stdout


def node(script: Path, *args: str, secret: str | None = None) -> dict[str, Any]:
    env = {**os.environ, "CLIENT_SECRET": secret} if secret else None
    done = subprocess.run(
        ["node", str(script), *args], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def sign_in(browser: httpx.Client, authorize_url: str, redirect_uri: str) -> str:
    """The browser: log in and allow; returns the callback URL."""
    start = browser.get(authorize_url)
    assert start.status_code == 303, start.text
    login_url = str(httpx.URL(authorize_url).join(start.headers["location"]))
    form = read_form(browser.get(login_url).text)
    login = browser.post(
        str(httpx.URL(login_url).join(form.actions[0])),
        data={"csrf_token": form.fields["csrf_token"], "username": USERNAME,
              "password": PASSWORD},
    )  # fmt: skip
    assert login.status_code == 303, login.text
    consent_url = str(httpx.URL(login_url).join(login.headers["location"]))
    form = read_form(browser.get(consent_url).text)
    allow = browser.post(
        str(httpx.URL(consent_url).join(form.actions[0])),
        data={"csrf_token": form.fields["csrf_token"], "decision": "allow"},
    )
    assert allow.status_code == 303, allow.text
    callback = str(allow.headers["location"])
    assert callback.startswith(redirect_uri + "?")
    return callback


def test_openid_client_code_pkce_id_token_userinfo_refresh(
    node_client: Path, server: ServerProcess
) -> None:
    redirect_uri = f"http://127.0.0.1:{free_port()}/cb"
    logged_out = redirect_uri.replace("/cb", "/logged-out")
    created = cli(
        server, "clients", "create", "--public", "--name", "Node App",
        "--redirect-uri", redirect_uri, "--post-logout-redirect-uri", logged_out,
        "--grant-type", "authorization_code", "--grant-type", "refresh_token",
        "--scope", SCOPE, "--json",
    )  # fmt: skip
    client_id = str(json.loads(created)["client_id"])
    cli(
        server, "users", "create", USERNAME, "--name", "Bob Example",
        "--email", "bob@example.com", "--password-stdin", stdin=PASSWORD + "\n",
    )  # fmt: skip
    start = node(node_client, "authorize", server.url, client_id, redirect_uri)
    assert start["url"].startswith(f"{server.url}/oauth/authorize?")
    browser = httpx.Client(timeout=TIMEOUT)
    callback = sign_in(browser, start["url"], redirect_uri)
    done = node(
        node_client, "finish", server.url, client_id, callback,
        start["verifier"], start["state"], start["nonce"],
    )  # fmt: skip
    claims = done["claims"]
    # The library validated the ID token (signature, iss, aud, nonce, at_hash); so do we.
    assert claims["iss"] == server.url
    assert claims["aud"] == client_id
    assert claims["nonce"] == start["nonce"]
    assert done["userinfo"]["sub"] == claims["sub"]
    assert done["userinfo"]["email"] == "bob@example.com"
    refreshed = done["refreshed"]
    assert refreshed["refresh_token"] != done["refresh_token"]
    assert refreshed["claims"]["sub"] == claims["sub"]
    assert refreshed["claims"]["auth_time"] == claims["auth_time"]
    api = httpx.get(
        f"{server.url}/restaurent",
        headers={"Authorization": f"Bearer {refreshed['access_token']}"},
        timeout=TIMEOUT,
    )
    assert api.status_code == 200, api.text

    # RP-Initiated Logout: the library builds the end-session URL from discovery; the
    # browser follows it and, the hint being of its session, is signed out at once.
    assert done["metadata"]["end_session_endpoint"] == f"{server.url}/oauth/logout"
    end = node(node_client, "logout", server.url, client_id, done["id_token"], logged_out, "bye")
    assert end["url"].startswith(f"{server.url}/oauth/logout?")
    response = browser.get(end["url"])
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"{logged_out}?state=bye"
    assert "oauth_session" not in browser.cookies  # cleared
    # Signed out on the server: a new sign-in asks for the password again.
    again = browser.get(start["url"])
    assert again.status_code == 303
    assert "/login" in again.headers["location"]
    browser.close()


@pytest.mark.server_env(
    OAUTH_SERVER_REGISTRATION="initial-token",
    OAUTH_SERVER_REGISTRATION_SCOPES=SCOPE,
)
def test_openid_client_registers_dynamically_then_signs_in(
    node_client: Path, server: ServerProcess
) -> None:
    """RFC 7591 end to end: an initial access token from the CLI; openid-client's
    ``dynamicClientRegistration`` (discovery finds ``registration_endpoint``); the confidential
    client it got signs a user in (code + PKCE, ID token validated, userinfo, refresh) with
    ``client_secret_basic``; then RFC 7592: it reads and deletes its registration, and its
    refresh token is refused."""
    created = json.loads(cli(server, "registration", "create-token", "--max-clients", "1",
                             "--expires-in", "10m", "--json"))  # fmt: skip
    redirect_uri = f"http://127.0.0.1:{free_port()}/cb"
    registered = node(node_client, "register", server.url, created["token"], redirect_uri)
    assert registered["server"]["registration_endpoint"] == f"{server.url}/oauth/register"
    metadata = registered["metadata"]
    client_id, secret = str(metadata["client_id"]), str(metadata["client_secret"])
    assert metadata["token_endpoint_auth_method"] == "client_secret_basic"
    assert metadata["redirect_uris"] == [redirect_uri]
    cli(
        server, "users", "create", USERNAME, "--name", "Bob Example",
        "--email", "bob@example.com", "--password-stdin", stdin=PASSWORD + "\n",
    )  # fmt: skip
    start = node(node_client, "authorize", server.url, client_id, redirect_uri, secret=secret)
    with httpx.Client(timeout=TIMEOUT) as browser:
        callback = sign_in(browser, start["url"], redirect_uri)
    done = node(
        node_client, "finish", server.url, client_id, callback,
        start["verifier"], start["state"], start["nonce"], secret=secret,
    )  # fmt: skip
    assert done["claims"]["aud"] == client_id
    assert done["claims"]["nonce"] == start["nonce"]
    assert done["userinfo"]["email"] == "bob@example.com"
    refreshed = done["refreshed"]
    assert refreshed["claims"]["sub"] == done["claims"]["sub"]
    # The token was good for one client: it is used up now.
    listed = json.loads(cli(server, "registration", "list-tokens", "--json"))
    assert [(t["id"], t["clients_registered"]) for t in listed] == [(created["id"], 1)]

    management = {"Authorization": f"Bearer {metadata['registration_access_token']}"}
    uri = str(metadata["registration_client_uri"])
    read = httpx.get(uri, headers=management, timeout=TIMEOUT)
    assert read.status_code == 200, read.text
    assert read.json()["client_name"] == "openid-client (dynamically registered)"
    assert httpx.delete(uri, headers=management, timeout=TIMEOUT).status_code == 204
    refused = httpx.post(
        f"{server.url}/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": refreshed["refresh_token"]},
        auth=(client_id, secret),
        timeout=TIMEOUT,
    )
    assert refused.status_code == 401, refused.text
    assert httpx.get(uri, headers=management, timeout=TIMEOUT).status_code == 401
