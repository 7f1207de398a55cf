"""A real ``oauth-server serve`` process: the seed README's curl flows over HTTP, durability
across a restart, and start-up refusals."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import DEMO_ID, SEED_TOKEN_REQUEST
from tests.process import CLI, ServerProcess

pytestmark = pytest.mark.slow


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(
        {
            "OAUTH_SERVER_DATABASE_URL": database_url,
            "OAUTH_SERVER_ENV": "development",
            "OAUTH_SERVER_SECRET_KEY_FILE": str(tmp_path / "secret_key"),
        },
        log=tmp_path / "server.log",
    )
    try:
        yield process.start()
    finally:
        process.stop()


def test_seed_flows_then_restart_keeps_everything(server: ServerProcess) -> None:
    # 1. curl -X POST /oauth/token with the README's JSON body
    token_response = httpx.post(f"{server.url}/oauth/token", json=SEED_TOKEN_REQUEST)
    assert token_response.status_code == 200
    assert token_response.headers["cache-control"] == "no-store"
    body = token_response.json()
    assert list(body) == ["token_type", "expires_in", "access_token"]
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 3600)
    token = body["access_token"]
    auth = {"Authorization": f"Bearer {token}"}

    # 2. GET /restaurent without and with the token
    public = httpx.get(f"{server.url}/restaurent").json()
    assert all(set(doc) == {"Name", "Address"} for doc in public)
    full = httpx.get(f"{server.url}/restaurent", headers=auth).json()
    assert all(set(doc) == {"_id", "Name", "Address", "routine"} for doc in full)

    # 3. GET /restaurentUpdate?id=…&Name=…
    update = httpx.get(
        f"{server.url}/restaurentUpdate",
        params={"id": DEMO_ID, "Name": "Persisted"},
        headers=auth,
    )
    assert update.json() == {"message": "Successful"}

    # Restart: the token, the client and the update survive.
    # uvicorn re-raises the SIGTERM it handled once shutdown is complete.
    assert server.stop() in (0, -15)
    assert "Application shutdown complete" in server.output()
    server.start()
    again = httpx.get(f"{server.url}/restaurent", headers=auth)
    assert again.status_code == 200
    names = {doc["_id"]["$oid"]: doc["Name"] for doc in again.json()}
    assert names[DEMO_ID] == "Persisted"
    assert httpx.post(f"{server.url}/oauth/token", json=SEED_TOKEN_REQUEST).status_code == 200
    # The demo data is not seeded again over the user's change.
    assert "seeded the demo client" not in server.output().split("Application shutdown")[-1]


def test_production_refuses_http_issuer_and_demo_client(database_url: str, tmp_path: Path) -> None:
    secret = "real-server-test-secret-key-0123456789abcdef"
    env = {"OAUTH_SERVER_DATABASE_URL": database_url, "OAUTH_SERVER_SECRET_KEY": secret}
    dev = ServerProcess({**env, "OAUTH_SERVER_ENV": "development"}, log=tmp_path / "dev.log")
    dev.start().stop()  # seeds the demo client
    result = subprocess.run(
        [CLI, "serve"],
        env={
            **dev.env,
            "OAUTH_SERVER_ENV": "production",
            "OAUTH_SERVER_ISSUER": "http://x.example",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "OAUTH_SERVER_ISSUER must be an https URL" in result.stderr
    assert "demo client 'admin'" in result.stderr
    assert "demo user 'demo'" in result.stderr
    subprocess.run(
        [CLI, "clients", "delete", "admin"], env=dev.env, check=True, capture_output=True
    )
    subprocess.run([CLI, "users", "delete", "demo"], env=dev.env, check=True, capture_output=True)
    prod = ServerProcess(
        {
            **env,
            "OAUTH_SERVER_ENV": "production",
            "OAUTH_SERVER_ISSUER": "https://auth.example",
        },
        log=tmp_path / "prod.log",
    )
    prod.start()
    try:
        assert httpx.get(f"{prod.url}/readyz").status_code == 200
    finally:
        prod.stop()


def test_production_requires_a_secret_key(database_url: str) -> None:
    result = subprocess.run(
        [CLI, "serve"],
        env={
            **os.environ,
            "OAUTH_SERVER_DATABASE_URL": database_url,
            "OAUTH_SERVER_ENV": "production",
            "OAUTH_SERVER_ISSUER": "https://auth.example",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "OAUTH_SERVER_SECRET_KEY must be set in production" in result.stderr


def test_a_changed_secret_key_is_refused_clearly(database_url: str, tmp_path: Path) -> None:
    env = {"OAUTH_SERVER_DATABASE_URL": database_url, "OAUTH_SERVER_SECRET_KEY": "a" * 40}
    ServerProcess(env, log=tmp_path / "first.log").start().stop()
    result = subprocess.run(
        [CLI, "serve"],
        env={**os.environ, **env, "OAUTH_SERVER_SECRET_KEY": "b" * 40},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "cannot decrypt signing key" in result.stderr
    assert "Traceback" not in result.stderr


def test_invalid_configuration_is_a_clear_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [CLI, "serve"],
        env={"OAUTH_SERVER_PORT": "70000", "PATH": "/usr/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "OAUTH_SERVER_PORT" in result.stderr
    assert "Traceback" not in result.stderr


def test_production_refuses_to_serve_on_a_critical_self_check_finding(
    database_url: str, tmp_path: Path
) -> None:
    """README "Self-check": production runs it at start and refuses on a critical finding,
    naming the finding and the setting; warnings are printed and do not stop it."""
    secret = tmp_path / "secret_key"
    secret.write_text("real-server-self-check-secret-0123456789abcdefXYZ\n")
    secret.chmod(0o600)
    env = {
        "OAUTH_SERVER_DATABASE_URL": database_url,
        "OAUTH_SERVER_ENV": "production",
        "OAUTH_SERVER_ISSUER": "https://auth.example",
        "OAUTH_SERVER_SECRET_KEY_FILE": str(secret),
        "OAUTH_SERVER_ACCESS_TOKEN_TTL": "7200",  # a warning
    }
    result = subprocess.run(
        [CLI, "serve"],
        env={**os.environ, **env, "OAUTH_SERVER_TRUSTED_PROXIES": "10.0.0.1,0.0.0.0/0"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "refusing to start in production" in result.stderr
    assert "[trusted-proxies.everyone] 0.0.0.0/0 trusts every peer" in result.stderr
    assert "(change: OAUTH_SERVER_TRUSTED_PROXIES)" in result.stderr
    assert "access-token.lifetime" not in result.stderr  # only critical findings refuse
    assert "Traceback" not in result.stderr
    server = ServerProcess(env, log=tmp_path / "prod.log").start()
    try:
        assert httpx.get(f"{server.url}/readyz").status_code == 200
    finally:
        server.stop()
    assert "self-check warning: [access-token.lifetime]" in server.output()
