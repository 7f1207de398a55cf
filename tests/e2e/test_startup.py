"""Start-up: production refusals (every reason at once, nothing written before them), the
banner naming the issuer first, and private SQLite files — on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import stat
import subprocess
from pathlib import Path

import httpx
import pytest
from alembic import command
from click.testing import CliRunner
from sqlalchemy import inspect, select

from oauth_server.bootstrap import StartupRefused, prepare
from oauth_server.cli import main
from oauth_server.clock import FrozenClock
from oauth_server.config import Settings
from oauth_server.storage import SqlStorage, open_storage
from oauth_server.storage.migrate import _config, current_revision
from oauth_server.storage.sql.schema import clients
from tests.helpers import SEED_TOKEN_REQUEST
from tests.process import CLI, ServerProcess

SECRET = "startup-test-secret-key-0123456789abcdef"
ISSUER_REASON = "OAUTH_SERVER_ISSUER must be an https URL in production"
DEMO_DATA_REASON = "OAUTH_SERVER_DEMO_DATA must not be enabled in production"
SECRET_REASON = "OAUTH_SERVER_SECRET_KEY must be set in production"
DEMO_CLIENT_REASON = "the demo client 'admin' with its published secret exists"
KEYS_REASON = "cannot decrypt signing key"


async def _client_rows(url: str) -> int | None:
    """How many clients the database holds; ``None`` when it has no clients table at all."""
    storage = open_storage(url)
    try:
        async with storage.engine.connect() as conn:
            tables = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
            if "clients" not in tables:
                return None
            return len((await conn.execute(select(clients.c.client_id))).all())
    finally:
        await storage.close()


async def _refusal(settings: Settings, clock: FrozenClock) -> str:
    storage = open_storage(settings.database_url)
    try:
        with pytest.raises(StartupRefused) as refused:
            await prepare(settings, storage, clock=clock)
    finally:
        await storage.close()
    return str(refused.value)


async def test_production_names_every_reason_at_once_and_writes_nothing(
    database_url: str, clock: FrozenClock
) -> None:
    # Issue 12 claim 3: an empty database, an http issuer, demo data on and no secret key gave
    # only the missing secret key. Issue 8: nothing is written before the refusal.
    settings = Settings(
        env="production", database_url=database_url, issuer="http://x.example", demo_data=True
    )
    message = await _refusal(settings, clock)
    for reason in (ISSUER_REASON, DEMO_DATA_REASON, SECRET_REASON):
        assert reason in message
    assert await _client_rows(database_url) in (None, 0)


async def test_production_with_a_secret_key_plants_no_demo_client(
    database_url: str, clock: FrozenClock
) -> None:
    # The demo data was seeded before the refusal: admin/getroot planted in a shared database.
    settings = Settings(
        env="production",
        database_url=database_url,
        issuer="http://x.example",
        demo_data=True,
        secret_key=SECRET,
    )
    message = await _refusal(settings, clock)
    assert ISSUER_REASON in message
    assert DEMO_DATA_REASON in message
    assert await _client_rows(database_url) in (None, 0)


async def test_production_names_the_stored_datas_problems_with_the_settings(
    database_url: str, clock: FrozenClock, tmp_path: Path
) -> None:
    development = Settings(
        database_url=database_url,
        secret_key_file=tmp_path / "secret_key",
        demo_data=True,
    )
    storage = open_storage(database_url)
    try:
        await prepare(development, storage, clock=clock)  # seeds admin, keys under another secret
    finally:
        await storage.close()
    settings = Settings(
        env="production",
        database_url=database_url,
        issuer="http://x.example",
        demo_data=True,
        secret_key=SECRET,
    )
    message = await _refusal(settings, clock)
    for reason in (ISSUER_REASON, DEMO_DATA_REASON, DEMO_CLIENT_REASON, KEYS_REASON):
        assert reason in message, message


async def test_an_older_schema_is_checked_for_stored_data_only_after_its_migration(
    database_url: str, clock: FrozenClock, tmp_path: Path
) -> None:
    """README (Production): a database whose schema is older than this version is checked for
    the demo client and keys only after its migration, on a start whose settings are fine; a
    start whose settings are not refuses for them alone and leaves the schema as it was."""
    development = Settings(
        database_url=database_url, secret_key_file=tmp_path / "secret_key", demo_data=True
    )
    storage = open_storage(database_url)
    try:
        await prepare(development, storage, clock=clock)  # seeds the demo client
        async with storage.engine.connect() as conn, conn.begin():
            await conn.run_sync(lambda sync: command.downgrade(_config(sync), "0005"))
        assert await current_revision(storage.engine) == "0005"
    finally:
        await storage.close()
    bad = Settings(
        env="production", database_url=database_url, issuer="http://x.example", secret_key=SECRET
    )
    message = await _refusal(bad, clock)
    assert ISSUER_REASON in message
    assert DEMO_CLIENT_REASON not in message  # not readable before the migration
    storage = open_storage(database_url)
    try:
        assert await current_revision(storage.engine) == "0005"  # nothing written
    finally:
        await storage.close()
    good = bad.model_copy(update={"issuer": "https://auth.example"})
    message = await _refusal(good, clock)
    assert DEMO_CLIENT_REASON in message  # read once migrated
    assert ISSUER_REASON not in message


async def test_a_good_production_start_after_a_refusal(
    database_url: str, clock: FrozenClock
) -> None:
    bad = Settings(env="production", database_url=database_url, issuer="http://x.example")
    await _refusal(bad, clock)
    good = Settings(
        env="production",
        database_url=database_url,
        issuer="https://auth.example",
        secret_key=SECRET,
    )
    storage = open_storage(database_url)
    try:
        report = await prepare(good, storage, clock=clock)
        assert not report.demo_client_present
        assert await storage.schema_is_current()
        assert len(await storage.keys.list()) == 1
    finally:
        await storage.close()


@pytest.mark.slow
def test_serve_in_production_prints_every_reason_and_leaves_the_database_empty(
    database_url: str, tmp_path: Path
) -> None:
    result = subprocess.run(
        [CLI, "serve"],
        env={
            **os.environ,
            "OAUTH_SERVER_DATABASE_URL": database_url,
            "OAUTH_SERVER_ENV": "production",
            "OAUTH_SERVER_ISSUER": "http://x.example",
            "OAUTH_SERVER_DEMO_DATA": "true",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    for reason in (ISSUER_REASON, DEMO_DATA_REASON, SECRET_REASON):
        assert reason in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert asyncio.run(_client_rows(database_url)) in (None, 0)


@pytest.mark.parametrize(
    ("host", "issuer"),
    [
        ("127.0.0.1", "http://localhost:8889"),
        ("127.0.0.2", "http://localhost:8889"),
        ("::1", "http://localhost:8889"),
        ("0.0.0.0", "http://localhost:8889"),  # noqa: S104
        ("::", "http://localhost:8889"),
        ("localhost", "http://localhost:8889"),
        ("192.0.2.7", "http://192.0.2.7:8889"),
        ("2001:db8::7", "http://[2001:db8::7]:8889"),
        ("auth.internal", "http://auth.internal:8889"),
    ],
)
def test_the_default_issuer(host: str, issuer: str) -> None:
    # README (OAUTH_SERVER_ISSUER): localhost for a loopback or wildcard host, else the host.
    assert Settings(host=host).public_issuer == issuer


@pytest.mark.slow
def test_the_banner_names_the_issuer_first(tmp_path: Path) -> None:
    server = ServerProcess(
        {
            "OAUTH_SERVER_DATABASE_URL": f"sqlite:///{tmp_path}/oauth.db",
            "OAUTH_SERVER_SECRET_KEY_FILE": str(tmp_path / "secret_key"),
            "OAUTH_SERVER_HOST": "127.0.0.1",
        },
        log=tmp_path / "server.log",
    )
    server.start()
    try:
        issuer = f"http://localhost:{server.port}"
        metadata = httpx.get(f"{server.url}/.well-known/oauth-authorization-server").json()
        assert metadata["issuer"] == issuer  # the behaviour the banner announces
        token = httpx.post(f"{server.url}/oauth/token", json=SEED_TOKEN_REQUEST).json()
        assert token["token_type"] == "Bearer"
    finally:
        server.stop()
    lines = [line.strip() for line in server.output().splitlines() if line.strip()]
    banner = lines.index(next(line for line in lines if line.startswith("Issuer:")))
    assert lines[banner] == f"Issuer: {issuer}    <- clients must use this URL"
    # First: no other banner line before it, and the curl example uses the issuer.
    assert "PythonOauthServer (development)" in lines[banner + 1]
    # Then the address it listens on, and the demo client with the first request to try.
    assert f"listening on 127.0.0.1:{server.port}," in lines[banner + 1]
    assert lines[banner + 2] == "demo client: admin / getroot (scope restaurent)"
    assert not any("PythonOauthServer" in line for line in lines[:banner])
    assert any(line.startswith(f"curl -s -X POST {issuer}/oauth/token") for line in lines)
    # And the one command that registers a public test client for signing in: it works as shown.
    register = next(
        line for line in lines if line.startswith("oauth-server clients create --public")
    )
    created = CliRunner().invoke(
        main,
        [*shlex.split(register)[1:], "--json"],
        env={
            "OAUTH_SERVER_DATABASE_URL": f"sqlite:///{tmp_path}/oauth.db",
            "OAUTH_SERVER_SECRET_KEY_FILE": str(tmp_path / "secret_key"),
        },
    )
    assert created.exit_code == 0, created.output
    registered = json.loads(created.stdout)
    assert registered["client_type"] == "public"
    assert "authorization_code" in registered["grant_types"]


async def test_a_new_sqlite_database_is_private_to_its_owner(tmp_path: Path) -> None:
    folder = tmp_path / "var"
    url = f"sqlite:///{folder}/oauth.db"
    previous = os.umask(0o022)  # the usual umask, which left the files world-readable
    try:
        storage = SqlStorage.from_url(url)
        try:
            await storage.migrate()
            await storage.meta.set(key="probe", value="1")  # the -wal and -shm files exist now
            files = [folder / "oauth.db", folder / "oauth.db-wal", folder / "oauth.db-shm"]
            assert all(file.exists() for file in files)
            for file in files:
                assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
            assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        finally:
            await storage.close()
    finally:
        os.umask(previous)
