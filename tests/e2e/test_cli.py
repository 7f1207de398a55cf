"""The ``oauth-server`` command line, in-process through click's runner."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import jwt as pyjwt
import pytest
from click.testing import CliRunner, Result

from oauth_server.cli import main
from oauth_server.storage.migrate import head_revision
from oauth_server.web.api import FastRouter
from tests.helpers import basic, cli_env, eventually
from tests.process import CLI


def test_db_upgrade(run) -> None:  # type: ignore[no-untyped-def]
    result = run("db", "upgrade")
    assert result.exit_code == 0, result.output
    head = head_revision()
    assert f"database at revision {head} (head {head})" in result.output


async def test_db_purge_runs_one_pass(run, database_url: str) -> None:  # type: ignore[no-untyped-def]
    from oauth_server.storage import RevokedToken, open_storage

    assert (await asyncio.to_thread(run, "db", "upgrade")).exit_code == 0
    storage = open_storage(database_url)
    try:
        for jti, expires_at in (("old", 1000), ("live", 2**40)):
            await storage.revocations.add(
                token=RevokedToken(jti=jti, client_id="c", expires_at=expires_at, revoked_at=1)
            )
        result = await asyncio.to_thread(run, "db", "purge", "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout) == {
            "opaque_tokens": 0,
            "revoked_tokens": 1,
            "changes": 1,  # the "old" revocation's announcement, long ago
            "signing_keys": [],
            "client_revocations": 0,
            "authorization_codes": 0,
            "refresh_tokens": 0,
            "refresh_families": 0,
            "issued_tokens": 0,
            "browser_sessions": 0,
            "interactions": 0,
        }
        assert [t.jti for t in await storage.revocations.active(now=0)] == ["live"]
        again = await asyncio.to_thread(run, "db", "purge")
        assert again.exit_code == 0, again.output
        assert "purged 0 expired opaque tokens, 0 expired revocations" in again.output
    finally:
        await storage.close()


def test_client_lifecycle(run) -> None:  # type: ignore[no-untyped-def]
    created = run(
        "clients",
        "create",
        "--client-id",
        "svc",
        "--scope",
        "restaurants:read a",
        "--default-scope",
        "a",
        "--token-format",
        "jwt",
        "--introspect",
        "https://rs.example",
        "--introspect",
        "https://api.example/v2",
        "--json",
    )
    assert created.exit_code == 0, created.output
    data = json.loads(created.stdout)
    assert data["client_id"] == "svc"
    assert len(data["client_secret"]) >= 43
    assert data["default_scope"] == "a"
    assert data["introspect"] == ["https://rs.example", "https://api.example/v2"]
    assert json.loads(run("clients", "show", "svc", "--json").stdout)["introspect"] == [
        "https://rs.example",
        "https://api.example/v2",
    ]
    revoked = run("clients", "revoke-tokens", "svc")
    assert revoked.exit_code == 0, revoked.output
    assert "revoked every token issued to svc" in revoked.output

    shown = run("clients", "show", "svc", "--json")
    assert "client_secret" not in json.loads(shown.stdout)
    assert data["client_secret"] not in shown.output
    listed = run("clients", "list")
    assert "svc" in listed.output

    rotated = run("clients", "rotate-secret", "svc", "--json")
    assert json.loads(rotated.stdout)["client_secret"] != data["client_secret"]

    assert run("clients", "create", "--client-id", "svc").exit_code == 1
    assert run("clients", "delete", "svc").exit_code == 0
    assert run("clients", "delete", "svc").exit_code == 1
    assert run("clients", "show", "svc").exit_code == 1


async def test_registered_resources_name_the_audience(
    run: Callable[..., Result], client: httpx.AsyncClient
) -> None:
    """README: ``resource`` must be one of the client's registered resources (``clients create
    --resource URL``, repeatable, first is the default); anything else is ``invalid_target``."""
    created = await asyncio.to_thread(
        run,
        "clients",
        "create",
        "--client-id",
        "multi",
        "--scope",
        "restaurants:read",
        "--resource",
        "https://a.example/api",
        "--resource",
        "https://b.example/api",
        "--json",
    )
    assert created.exit_code == 0, created.output
    secret = json.loads(created.stdout)["client_secret"]

    async def audience(**extra: str) -> httpx.Response:
        return await client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials", **extra},
            headers={"Authorization": basic("multi", secret)},
        )

    def aud(response: httpx.Response) -> object:
        assert response.status_code == 200, response.text
        return pyjwt.decode(response.json()["access_token"], options={"verify_signature": False})[
            "aud"
        ]

    assert aud(await audience()) == "https://a.example/api"
    assert aud(await audience(resource="https://b.example/api")) == "https://b.example/api"
    refused = await audience(resource="https://c.example/api")
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_target"


@pytest.mark.parametrize(
    "args",
    [
        ("clients", "create", "--client-id", "bad id"),
        ("clients", "create", "--grant-type", "password"),
        ("clients", "create", "--scope", "a", "--default-scope", "b"),
        ("clients", "create", "--scope", 'a"b'),
        ("clients", "create", "--token-format", "paseto"),
        ("clients", "rotate-secret", "nobody"),
        ("clients", "revoke-tokens", "nobody"),
        ("clients", "create", "--introspect", "not-a-uri"),
        ("clients", "create", "--introspect", "https://rs.example/#x"),
    ],
)
def test_bad_input_exits_non_zero_without_traceback(  # type: ignore[no-untyped-def]
    run, args: tuple[str, ...]
) -> None:
    result = run(*args)
    assert result.exit_code in (1, 2), result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_restaurants_import(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "r.json"
    source.write_text(
        json.dumps(
            [
                {
                    "_id": {"$oid": "64b7f0c2a1b2c3d4e5f60718"},
                    "Name": "A",
                    "Address": "1 St",
                    "routine": {"open": "9", "close": "5"},
                },
                {"_id": "64b7f0c2a1b2c3d4e5f60719", "Name": "B", "Address": "2 St"},
                {"Name": "C", "Address": "3 St"},
            ]
        )
    )
    result = run("restaurants", "import", str(source))
    assert result.exit_code == 0, result.output
    assert "imported 3" in result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "not valid JSON"),
        ('{"Name": "x"}', "JSON array"),
        ('[{"Name": "x"}]', "Address is required"),
        ('[{"_id": {"$oid": "zz"}, "Name": "x", "Address": "y"}]', "24 hexadecimal"),
        ('[{"Name": 5, "Address": "y"}]', "must be a string"),
        ("[1]", "JSON object"),
    ],
)
def test_restaurants_import_rejects_bad_files(  # type: ignore[no-untyped-def]
    run, tmp_path: Path, content: str, message: str
) -> None:
    source = tmp_path / "bad.json"
    source.write_text(content)
    result = run("restaurants", "import", str(source))
    assert result.exit_code == 1
    assert message in result.output


async def test_cli_changes_reach_a_running_server(
    database_url: str, app: FastRouter, client: httpx.AsyncClient
) -> None:
    """A client rotated or deleted by the CLI — another process — stops working in the running
    server within the cache sync interval (50 ms in these tests)."""

    async def cli(*args: str) -> dict[str, str]:
        result = await asyncio.to_thread(
            subprocess.run,
            [CLI, *args],
            env={**os.environ, **cli_env(database_url)},
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(result.stdout) if "--json" in args else {}

    created = await cli("clients", "create", "--client-id", "cli", "--scope", "a", "--json")
    form = {
        "grant_type": "client_credentials",
        "client_id": "cli",
        "client_secret": created["client_secret"],
    }
    assert (await client.post("/oauth/token", data=form)).status_code == 200

    async def refused() -> bool:
        status = (await client.post("/oauth/token", data=form)).status_code
        assert status in (200, 401), status
        return status == 401

    rotated = await cli("clients", "rotate-secret", "cli", "--json")
    await eventually(refused, within=5)  # the old secret, once the sync has run
    form["client_secret"] = rotated["client_secret"]
    assert (await client.post("/oauth/token", data=form)).status_code == 200
    await cli("clients", "delete", "cli")
    await eventually(refused, within=5)


@pytest.mark.postgres
def test_a_missing_database_is_a_clear_error(pg_database: str) -> None:
    missing = pg_database.rsplit("/", 1)[0] + "/no_such_database_here"
    result = CliRunner().invoke(main, ["clients", "list"], env=cli_env(missing))
    assert result.exit_code == 1
    assert 'database "no_such_database_here" does not exist' in result.output
    assert "Traceback" not in result.output


def test_keys_remove_takes_a_kid_that_starts_with_a_dash(run) -> None:  # type: ignore[no-untyped-def]
    """A kid is a base64url thumbprint: one in 64 starts with "-". It is the kid, never read as
    an option (seen in CI: `keys remove -v0Ney…` answered "No such option '-v'")."""
    assert run("db", "upgrade").exit_code == 0
    listed = run("keys", "list", "--json")
    assert listed.exit_code == 0, listed.output
    # The kid CI met (it holds an "h", once read as -h), and one that starts with "--".
    for kid in ("-v0NeyW8_nVC0FwHa9XDm9ThBUYpZNalGuCWRyFKT-g", "--hq2-bW8_nVC0FwHa9XDm9ThBUYp"):
        result = run("keys", "remove", kid)
        assert result.exit_code == 1, result.output  # a usage error would be 2
        assert f"no active key {kid!r}" in result.output
