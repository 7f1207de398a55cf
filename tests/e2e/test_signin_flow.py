"""The whole "Sign in with …" flow against a real ``oauth-server serve`` process, as issue 9's
"Done when" describes it: a public client registered with one CLI command, a user created with
the CLI, the browser driven through the real login and consent forms (plain httpx, then
Authlib's OAuth 2 client), the code exchanged with PKCE, the ID token verified with PyJWT
against the JWKS, the access token accepted by the restaurants API and userinfo, and the
refresh token rotated — its reuse revoking the family."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import jwt as pyjwt
import pytest
from authlib.integrations.httpx_client import OAuth2Client

from oauth_server.oauth.tokens.id_token import at_hash
from tests.process import CLI, ServerProcess, free_port
from tests.signin import read_form

pytestmark = pytest.mark.slow

SECRET = "signin-flow-test-secret-key-0123456789"
USERNAME = "alice"
PASSWORD = "a long and correct password 42"
SCOPE = "openid profile email offline_access restaurants:read"
TIMEOUT = 20.0


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(
        {"OAUTH_SERVER_DATABASE_URL": database_url, "OAUTH_SERVER_SECRET_KEY": SECRET},
        log=tmp_path / "server.log",
    )
    try:
        yield process.start()
    finally:
        process.stop()


def cli(server: ServerProcess, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [CLI, *args],
        env=server.env,
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout


def register_app(server: ServerProcess, redirect_uri: str) -> str:
    """The README's one command that registers a public client."""
    out = cli(
        server, "clients", "create", "--public", "--name", "Menu Planner",
        "--redirect-uri", redirect_uri,
        "--grant-type", "authorization_code", "--grant-type", "refresh_token",
        "--scope", SCOPE, "--json",
    )  # fmt: skip
    return str(json.loads(out)["client_id"])


def create_user(server: ServerProcess) -> None:
    cli(
        server, "users", "create", USERNAME, "--name", "Alice Example",
        "--email", "alice@example.com", "--email-verified", "--password-stdin",
        stdin=PASSWORD + "\n",
    )  # fmt: skip


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def local(server: ServerProcess, metadata: dict[str, Any], name: str) -> str:
    """An advertised endpoint, at the address the test reaches the server by."""
    return str(metadata[name]).replace(str(metadata["issuer"]), server.url)


def discover(server: ServerProcess) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/.well-known/openid-configuration", timeout=TIMEOUT)
    assert response.status_code == 200
    metadata: dict[str, Any] = response.json()
    assert metadata["response_types_supported"] == ["code"]
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    return metadata


def sign_in(browser: httpx.Client, authorize_url: str, redirect_uri: str) -> str:
    """A person in a browser: open the authorize URL, log in, allow. Returns the callback URL
    the browser is sent to (nothing listens there: the app is the test)."""
    start = browser.get(authorize_url)
    assert start.status_code == 303, start.text
    login_url = urljoin(authorize_url, start.headers["location"])
    page = browser.get(login_url)
    assert page.status_code == 200, page.text
    form = read_form(page.text)
    assert {"username", "password", "csrf_token"} <= set(form.fields)
    login = browser.post(
        urljoin(login_url, form.actions[0]),
        data={"csrf_token": form.fields["csrf_token"], "username": USERNAME,
              "password": PASSWORD},
    )  # fmt: skip
    assert login.status_code == 303, login.text
    consent_url = urljoin(login_url, login.headers["location"])
    page = browser.get(consent_url)
    assert page.status_code == 200, page.text
    assert "Menu Planner" in page.text
    form = read_form(page.text)
    assert ("decision", "allow") in form.buttons
    allow = browser.post(
        urljoin(consent_url, form.actions[0]),
        data={"csrf_token": form.fields["csrf_token"], "decision": "allow"},
    )
    assert allow.status_code == 303, allow.text
    callback = str(allow.headers["location"])
    assert callback.startswith(redirect_uri + "?")
    return callback


def verify_id_token(
    server: ServerProcess, metadata: dict[str, Any], id_token: str, client_id: str
) -> dict[str, Any]:
    jwks = pyjwt.PyJWKSet.from_dict(httpx.get(local(server, metadata, "jwks_uri")).json())
    header = pyjwt.get_unverified_header(id_token)
    assert header["typ"] == "JWT"
    assert header["alg"] in metadata["id_token_signing_alg_values_supported"]
    key = next(k for k in jwks.keys if k.key_id == header["kid"])
    claims: dict[str, Any] = pyjwt.decode(
        id_token,
        key,
        algorithms=[header["alg"]],
        audience=client_id,
        issuer=metadata["issuer"],
        options={"require": ["exp", "iat", "sub", "aud", "iss", "auth_time"]},
    )
    return claims


def test_sign_in_through_the_forms(server: ServerProcess) -> None:
    redirect_uri = f"http://127.0.0.1:{free_port()}/cb"
    client_id = register_app(server, redirect_uri)
    create_user(server)
    metadata = discover(server)
    verifier, challenge = pkce_pair()
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": SCOPE,
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    authorize = local(server, metadata, "authorization_endpoint")
    with httpx.Client(timeout=TIMEOUT) as browser:
        url = str(httpx.URL(authorize, params=params))
        callback = sign_in(browser, url, redirect_uri)
    query = {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}
    assert query["state"] == state
    assert query["iss"] == metadata["issuer"]  # RFC 9207

    token_url = local(server, metadata, "token_endpoint")
    with httpx.Client(timeout=TIMEOUT) as app:
        exchange = app.post(token_url, data={
            "grant_type": "authorization_code", "code": query["code"],
            "redirect_uri": redirect_uri, "code_verifier": verifier, "client_id": client_id,
        })  # fmt: skip
        assert exchange.status_code == 200, exchange.text
        tokens = exchange.json()
        assert tokens["token_type"] == "Bearer"
        assert set(tokens["scope"].split()) == set(SCOPE.split())
        claims = verify_id_token(server, metadata, tokens["id_token"], client_id)
        assert claims["nonce"] == nonce
        assert claims["at_hash"] == at_hash(tokens["access_token"], claims_alg(tokens))
        assert claims["amr"] == ["pwd"]
        access = {"Authorization": f"Bearer {tokens['access_token']}"}

        # The restaurants API: the full view for the token, the public one without.
        public = app.get(f"{server.url}/restaurent")
        full = app.get(f"{server.url}/restaurent", headers=access)
        assert full.status_code == 200, full.text
        assert full.json() != public.json()
        info = app.get(local(server, metadata, "userinfo_endpoint"), headers=access)
        assert info.status_code == 200, info.text
        assert info.json()["sub"] == claims["sub"]
        assert info.json()["email"] == "alice@example.com"
        assert info.json()["name"] == "Alice Example"

        # Refresh rotates.
        first = tokens["refresh_token"]
        refreshed = app.post(token_url, data={
            "grant_type": "refresh_token", "refresh_token": first, "client_id": client_id,
        })  # fmt: skip
        assert refreshed.status_code == 200, refreshed.text
        second = refreshed.json()
        assert second["refresh_token"] != first
        new_access = {"Authorization": f"Bearer {second['access_token']}"}
        assert app.get(f"{server.url}/restaurent", headers=new_access).status_code == 200
        # OIDC Core §12.2: a new ID token with the original's iss, sub, aud and auth_time.
        again = verify_id_token(server, metadata, second["id_token"], client_id)
        for name in ("iss", "sub", "aud", "auth_time"):
            assert again[name] == claims[name], name

        # The rotated token presented again: refused, and the whole family is revoked.
        reuse = app.post(token_url, data={
            "grant_type": "refresh_token", "refresh_token": first, "client_id": client_id,
        })  # fmt: skip
        assert reuse.status_code == 400
        assert reuse.json()["error"] == "invalid_grant"
        after = app.post(token_url, data={
            "grant_type": "refresh_token", "refresh_token": second["refresh_token"],
            "client_id": client_id,
        })  # fmt: skip
        assert after.json()["error"] == "invalid_grant"
        assert app.get(f"{server.url}/restaurent", headers=new_access).status_code == 401


def claims_alg(tokens: dict[str, Any]) -> str:
    return str(pyjwt.get_unverified_header(tokens["id_token"])["alg"])


def test_authlib_client_signs_in_through_the_forms(
    server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Authlib insists on https unless told this is a local test; production issuers are https.
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")
    redirect_uri = f"http://127.0.0.1:{free_port()}/cb"
    client_id = register_app(server, redirect_uri)
    create_user(server)
    metadata = discover(server)
    token_url = local(server, metadata, "token_endpoint")
    nonce = secrets.token_urlsafe(16)
    with OAuth2Client(
        client_id,
        token_endpoint_auth_method="none",
        redirect_uri=redirect_uri,
        scope=SCOPE,
        code_challenge_method="S256",
        timeout=TIMEOUT,
    ) as oauth:
        verifier = secrets.token_urlsafe(48)
        url, state = oauth.create_authorization_url(
            local(server, metadata, "authorization_endpoint"), code_verifier=verifier, nonce=nonce
        )
        with httpx.Client(timeout=TIMEOUT) as browser:
            callback = sign_in(browser, url, redirect_uri)
        token = oauth.fetch_token(
            token_url, authorization_response=callback, state=state, code_verifier=verifier
        )
        claims = verify_id_token(server, metadata, token["id_token"], client_id)
        assert claims["nonce"] == nonce
        assert oauth.get(f"{server.url}/restaurent").status_code == 200
        info = oauth.get(local(server, metadata, "userinfo_endpoint"))
        assert info.json()["sub"] == claims["sub"]
        first = token["refresh_token"]
        refreshed = oauth.refresh_token(token_url, refresh_token=first)
        assert refreshed["refresh_token"] != first
        assert oauth.get(f"{server.url}/restaurent").status_code == 200
