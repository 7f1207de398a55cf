"""Authlib's OAuth 2 client against a real ``oauth-server serve`` process: the authorization
code exchange with PKCE (S256) as a public client (``none``), then refresh — with a code put
into the database by the test, as the authorization endpoint will."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client

from oauth_server.storage import open_storage
from tests.process import ServerProcess
from tests.signin import PUBLIC_ID, REDIRECT, SeededCode, add_world, seed_code

pytestmark = pytest.mark.slow

SECRET = "third-party-test-secret-key-0123456789"


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


@pytest.fixture(autouse=True)
def plain_http_on_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")


async def seeded(database_url: str) -> SeededCode:
    storage = open_storage(database_url, pool_size=1)
    try:
        await add_world(storage)
        return await seed_code(storage, now=time.time(), scope="restaurent restaurants:read")
    finally:
        await storage.close()


async def test_authlib_code_pkce_and_refresh(server: ServerProcess, database_url: str) -> None:
    code = await seeded(database_url)
    async with httpx.AsyncClient() as plain:
        discovery = await plain.get(f"{server.url}/.well-known/oauth-authorization-server")
    metadata = discovery.json()
    token_endpoint = metadata["token_endpoint"].replace(metadata["issuer"], server.url)
    assert "none" in metadata["token_endpoint_auth_methods_supported"]
    async with AsyncOAuth2Client(
        PUBLIC_ID,
        token_endpoint_auth_method="none",
        redirect_uri=REDIRECT,
        code_challenge_method="S256",
    ) as oauth:
        token = await oauth.fetch_token(
            token_endpoint,
            grant_type="authorization_code",
            code=code.code,
            code_verifier=code.verifier,
        )
        assert token["token_type"] == "Bearer"
        assert (await oauth.get(f"{server.url}/restaurent")).status_code == 200
        first_refresh = token["refresh_token"]
        refreshed = await oauth.refresh_token(token_endpoint, refresh_token=first_refresh)
        assert refreshed["refresh_token"] != first_refresh
        assert (await oauth.get(f"{server.url}/restaurent")).status_code == 200
        # The client's own copy was rotated: presenting the old one is reuse, refused.
        async with httpx.AsyncClient() as plain:
            reuse = await plain.post(token_endpoint, data={
                "grant_type": "refresh_token", "refresh_token": first_refresh,
                "client_id": PUBLIC_ID})  # fmt: skip
        assert reuse.json()["error"] == "invalid_grant"
        assert (await oauth.get(f"{server.url}/restaurent")).status_code == 401
