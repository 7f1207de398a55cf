"""``oauth-server check``: fails on the development defaults, passes on a proper production
configuration, on both backends; its JSON report and its exit status."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from oauth_server.bootstrap import prepare
from oauth_server.cli import main
from oauth_server.clock import SystemClock
from oauth_server.config import Settings
from oauth_server.storage import open_storage

SECRET = "self-check-cli-test-secret-key-0123456789abcdefXYZ"
FINDING_FIELDS = {"id", "severity", "message", "setting", "fix", "reference"}


def _check(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, ["check", *args], env=env)


def _production_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    secret = tmp_path / "secret_key"
    secret.write_text(SECRET + "\n")
    secret.chmod(0o600)
    return {
        "OAUTH_SERVER_ENV": "production",
        "OAUTH_SERVER_ISSUER": "https://auth.example",
        "OAUTH_SERVER_SECRET_KEY_FILE": str(secret),
        "OAUTH_SERVER_DATABASE_URL": database_url,
    }


def test_the_development_defaults_fail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = _check({})
    assert result.exit_code == 1, result.output
    for rule in ("env.development", "issuer.https", "demo-data.enabled", "secret-key.origin"):
        assert rule in result.output
    assert "fix: set OAUTH_SERVER_ISSUER" in result.output
    assert "RFC 8414 §2" in result.output
    assert result.output.strip().splitlines()[-1].startswith("FAIL: 4 critical")
    assert not (tmp_path / "var").exists()  # neither the database nor a secret was created


def test_the_json_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = _check({}, "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert set(report) == {"ok", "strict", "counts", "findings", "checks_run", "checks_skipped"}
    assert report["ok"] is False
    assert report["strict"] is False
    assert report["counts"] == {"critical": 4, "warning": 0, "info": 1}
    assert report["checks_skipped"] == ["demo data", "signing keys", "clients"]
    assert "secret key" in report["checks_run"]
    for finding in report["findings"]:
        assert set(finding) == FINDING_FIELDS
        assert finding["severity"] in ("critical", "warning", "info")
        assert all(isinstance(value, str) and value for value in finding.values())
    issuer = next(f for f in report["findings"] if f["id"] == "issuer.https")
    assert issuer["setting"] == "OAUTH_SERVER_ISSUER"
    assert issuer["reference"] == "RFC 8414 §2; RFC 6749 §3.1, §3.2"


async def test_a_proper_production_configuration_passes(database_url: str, tmp_path: Path) -> None:
    env = _production_env(database_url, tmp_path)
    runner = CliRunner()
    upgraded = await asyncio.to_thread(runner.invoke, main, ["db", "upgrade"], env=env)
    assert upgraded.exit_code == 0, upgraded.output
    result = await asyncio.to_thread(_check, env, "--strict")
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == "ok: 0 critical, 0 warning, 1 info (strict)"
    report = json.loads((await asyncio.to_thread(_check, env, "--json")).stdout)
    assert report["ok"] is True
    assert [f["id"] for f in report["findings"]] == ["signing-key.none"]
    assert report["checks_skipped"] == []

    # The same database after a development start: the demo client and user are critical.
    development = Settings(
        env="development",
        database_url=database_url,
        secret_key=SECRET,
        password_hash_time_cost=1,
        password_hash_memory_cost=8,
    )
    storage = open_storage(database_url)
    try:
        await prepare(development, storage, clock=SystemClock())
    finally:
        await storage.close()
    result = await asyncio.to_thread(_check, env, "--json")
    assert result.exit_code == 1
    found = {f["id"] for f in json.loads(result.stdout)["findings"]}
    assert {"demo-client.present", "demo-user.present"} <= found


def test_warnings_fail_only_strict(tmp_path: Path) -> None:
    env = {
        **_production_env(f"sqlite:///{tmp_path}/absent.db", tmp_path),
        "OAUTH_SERVER_ACCESS_TOKEN_TTL": "7200",
    }
    relaxed = _check(env)
    assert relaxed.exit_code == 0, relaxed.output
    assert "access-token.lifetime" in relaxed.output
    strict = _check(env, "--strict")
    assert strict.exit_code == 1
    assert json.loads(_check(env, "--json", "--strict").stdout)["ok"] is False


def test_an_unreachable_database_fails(tmp_path: Path) -> None:
    env = _production_env("postgresql://app:s3cr3t@127.0.0.1:9/oauth", tmp_path)
    result = _check(env)
    assert result.exit_code == 1
    assert "database.unreachable" in result.output
    assert "s3cr3t" not in result.output
