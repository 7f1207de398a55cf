"""The self-check's rules, one table per area: each rule fires on the setting or row that
breaks it, and stays quiet on the one that does not."""

from __future__ import annotations

import re
import secrets
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from oauth_server.bootstrap import prepare
from oauth_server.clock import FrozenClock
from oauth_server.config import Settings
from oauth_server.oauth.clients import ClientRegistry
from oauth_server.selfcheck import (
    CHECKS,
    RULES,
    Check,
    Deployment,
    Finding,
    Report,
    check_deployment,
    format_report,
    rules_table,
)
from oauth_server.selfcheck.config_checks import estimated_entropy_bits
from oauth_server.services import build_key_manager
from oauth_server.storage import Client, SigningKeyRecord, SqlStorage

STRONG = "Vq3-h8ZkD0pL_wX7rT2yN5bM9cF4gJ6sA1eU0iO8uKxQ"  # 44 random characters
DAY = 86_400

pytestmark = pytest.mark.filterwarnings("error")


def production(**changes: Any) -> Settings:
    """A proper production configuration (no database yet), with ``changes`` on top."""
    values: dict[str, Any] = {
        "env": "production",
        "issuer": "https://auth.example",
        "secret_key": STRONG,
        "database_url": "sqlite:////nonexistent-folder-for-selfcheck/oauth.db",
        **changes,
    }
    return Settings(**values)


async def settings_findings(settings: Settings) -> list[Finding]:
    """What the checks that read only the settings (and files) find."""
    deployment = Deployment(settings=settings, clock=FrozenClock())
    found: list[Finding] = []
    for registered in CHECKS:
        if registered.needs == "settings":
            found.extend(await registered.run(deployment))
    return found


def ids(findings: list[Finding] | Report) -> set[str]:
    items = findings.findings if isinstance(findings, Report) else findings
    return {finding.id for finding in items}


async def test_a_proper_production_configuration_has_no_findings() -> None:
    assert await settings_findings(production()) == []


@pytest.mark.parametrize(
    ("changes", "rule", "fires"),
    [
        ({"env": "development"}, "env.development", True),
        ({}, "env.development", False),
        ({"issuer": "http://auth.example"}, "issuer.https", True),
        ({"issuer": None}, "issuer.https", True),  # the default: http://localhost:8889
        ({"issuer": "https://auth.example"}, "issuer.https", False),
        ({"resource": "http://api.example"}, "resource.https", True),
        ({"resource": "https://api.example"}, "resource.https", False),
        ({"demo_data": True}, "demo-data.enabled", True),
        ({"env": "development"}, "demo-data.enabled", True),  # development's default
        ({"env": "development", "demo_data": False}, "demo-data.enabled", False),
        ({"secret_key": None}, "secret-key.origin", True),
        ({"secret_key": "changeme" * 4}, "secret-key.weak", True),
        ({"secret_key": "a" * 40}, "secret-key.weak", True),
        ({"secret_key": "abcdefghijk" + "a" * 21}, "secret-key.low-entropy", True),
        ({"secret_key": secrets.token_hex(16)}, "secret-key.low-entropy", False),
        ({"secret_key": secrets.token_urlsafe(48)}, "secret-key.weak", False),
        (
            {"password_hash_memory_cost": 7168, "password_hash_time_cost": 4},
            "password-hashing.weak",
            True,
        ),
        (
            {"password_hash_memory_cost": 4096, "password_hash_time_cost": 9},
            "password-hashing.weak",
            True,
        ),
        (
            {"password_hash_memory_cost": 7168, "password_hash_time_cost": 5},
            "password-hashing.weak",
            False,
        ),
        (
            {"password_hash_memory_cost": 47_104, "password_hash_time_cost": 1},
            "password-hashing.weak",
            False,
        ),
        ({"key_rotation_interval": 0}, "key-rotation.off", True),
        ({"key_rotation_interval": 91 * DAY}, "key-rotation.off", True),
        ({"key_rotation_interval": 90 * DAY}, "key-rotation.off", False),
        ({"signing_alg": "EdDSA"}, "signing-alg.deprecated-name", True),
        ({"signing_alg": "Ed25519"}, "signing-alg.deprecated-name", False),
        ({"access_token_ttl": 3601}, "access-token.lifetime", True),
        ({"access_token_ttl": 3600}, "access-token.lifetime", False),
        ({"id_token_ttl": 7200}, "id-token.lifetime", True),
        ({"id_token_ttl": 3600}, "id-token.lifetime", False),
        ({"refresh_token_idle_ttl": 31 * DAY}, "refresh-token.lifetime", True),
        ({"refresh_token_max_ttl": 400 * DAY}, "refresh-token.lifetime", True),
        ({"refresh_token_idle_ttl": 30 * DAY}, "refresh-token.lifetime", False),
        ({"refresh_reuse_grace": 5}, "refresh-token.reuse-grace", True),
        ({"refresh_reuse_grace": 0}, "refresh-token.reuse-grace", False),
        ({"rate_limits": False}, "rate-limits.off", True),
        ({"rate_limits": True}, "rate-limits.off", False),
        ({"workers": 2}, "rate-limits.per-process", True),
        ({"workers": 2, "redis_url": "redis://cache/0"}, "rate-limits.per-process", False),
        ({"trusted_proxies": "0.0.0.0/0"}, "trusted-proxies.everyone", True),
        ({"trusted_proxies": "10.0.0.1, ::/0"}, "trusted-proxies.everyone", True),
        ({"trusted_proxies": "10.0.0.0/8,127.0.0.1"}, "trusted-proxies.everyone", False),
        ({"trusted_proxies": "10.0.0.0/8,127.0.0.1"}, "trusted-proxies.public", False),
        ({"trusted_proxies": "8.8.0.0/16"}, "trusted-proxies.public", True),
        ({"trusted_proxies": "8.8.8.0/24"}, "trusted-proxies.public", False),
        ({"workers": 2}, "database.sqlite-workers", True),
        ({"workers": 1}, "database.sqlite-workers", False),
        (
            {"workers": 2, "database_url": "postgresql://db/oauth"},
            "database.sqlite-workers",
            False,
        ),
    ],
)
async def test_settings_rules(changes: dict[str, Any], rule: str, fires: bool) -> None:
    found = await settings_findings(production(**changes))
    assert (rule in ids(found)) is fires, found
    for finding in found:  # every finding is a declared rule's, with its severity
        assert RULES[finding.id].severity == finding.severity
        assert finding.setting
        assert finding.fix
        assert finding.reference


def test_entropy_estimate() -> None:
    assert estimated_entropy_bits("") == 0
    assert estimated_entropy_bits("a" * 40) == 0
    assert estimated_entropy_bits("ab" * 16) == pytest.approx(32)
    assert estimated_entropy_bits(secrets.token_urlsafe(48)) > 250


def _secret_file(tmp_path: Path, content: str, mode: int = 0o600) -> Path:
    path = tmp_path / "secret_key"
    path.write_text(content + "\n")
    path.chmod(mode)
    return path


@pytest.mark.parametrize(
    ("content", "mode", "expected"),
    [
        (STRONG, 0o600, set()),
        (STRONG, 0o400, set()),
        (STRONG, 0o640, {"file.secret-key"}),
        (STRONG, 0o604, {"file.secret-key"}),
        ("short-secret", 0o600, {"secret-key.weak"}),
        ("x" * 40, 0o600, {"secret-key.weak"}),
    ],
)
async def test_a_configured_secret_key_file(
    tmp_path: Path, content: str, mode: int, expected: set[str]
) -> None:
    path = _secret_file(tmp_path, content, mode)
    found = await settings_findings(production(secret_key=None, secret_key_file=path))
    assert ids(found) == expected, found


async def test_a_missing_secret_key_file_is_critical(tmp_path: Path) -> None:
    settings = production(secret_key=None, secret_key_file=tmp_path / "absent")
    [finding] = await settings_findings(settings)
    assert (finding.id, finding.severity) == ("secret-key.origin", "critical")
    assert "does not exist" in finding.message
    assert finding.setting == "OAUTH_SERVER_SECRET_KEY_FILE"


async def test_the_development_secret_file_does_not_count_in_production(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The default file (var/secret_key) exists, as development left it: not a production key.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "var").mkdir(mode=0o700)
    _secret_file(tmp_path / "var", STRONG)
    found = await settings_findings(production(secret_key=None))
    assert ids(found) == {"secret-key.origin"}
    development = await settings_findings(production(env="development", demo_data=False))
    assert "secret-key.origin" not in ids(development)  # it has OAUTH_SERVER_SECRET_KEY
    development = await settings_findings(
        production(env="development", demo_data=False, secret_key=None)
    )
    assert "secret-key.origin" in ids(development)


async def test_a_secret_key_and_a_file_both_set(tmp_path: Path) -> None:
    path = _secret_file(tmp_path, STRONG)
    found = await settings_findings(production(secret_key_file=path))
    assert ids(found) == {"secret-key.both-set"}


@pytest.mark.parametrize(
    ("file_mode", "folder_mode", "expected"),
    [
        (0o600, 0o700, set()),
        (0o640, 0o700, {"file.database-readable"}),
        (0o644, 0o755, {"file.database-readable"}),
        (0o660, 0o700, {"file.database-writable"}),
        (0o600, 0o777, {"file.database-writable"}),
        (0o600, 0o1777, set()),  # sticky, like /tmp: others cannot replace the file
    ],
)
async def test_sqlite_file_permissions(
    tmp_path: Path, file_mode: int, folder_mode: int, expected: set[str]
) -> None:
    folder = tmp_path / "db"
    folder.mkdir()
    database = folder / "oauth.db"
    database.write_bytes(b"x")
    database.chmod(file_mode)
    folder.chmod(folder_mode)
    try:
        found = await settings_findings(production(database_url=f"sqlite:///{database}"))
    finally:
        folder.chmod(0o700)
    assert ids(found) == expected, found


async def test_the_wal_file_is_checked_too(tmp_path: Path) -> None:
    database = tmp_path / "oauth.db"
    database.write_bytes(b"x")
    database.chmod(0o600)
    wal = tmp_path / "oauth.db-wal"
    wal.write_bytes(b"x")
    wal.chmod(0o644)
    found = await settings_findings(production(database_url=f"sqlite:///{database}"))
    assert [f.message for f in found] == [f"the database file {wal} has mode 644"]


# --- the database and its rows -------------------------------------------------------------


def _on(storage: SqlStorage, **changes: Any) -> Settings:
    return production(database_url=str(storage.engine.url).replace("+aiosqlite", ""), **changes)


async def test_a_fresh_database_needs_no_change(sqlite_storage: SqlStorage) -> None:
    report = await check_deployment(
        _on(sqlite_storage), clock=FrozenClock(), storage=sqlite_storage
    )
    assert ids(report) == {"signing-key.none"}
    assert not report.failed(strict=True)
    assert report.skipped == ()
    assert report.schema_current


async def test_an_absent_sqlite_file_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "new" / "oauth.db"
    report = await check_deployment(
        production(database_url=f"sqlite:///{path}"), clock=FrozenClock()
    )
    assert ids(report) == {"database.absent"}
    assert set(report.skipped) == {"demo data", "signing keys", "clients"}
    assert not path.exists()
    assert not path.parent.exists()
    assert not report.failed(strict=True)


async def test_an_unreachable_database_is_critical() -> None:
    settings = production(database_url="postgresql://app:s3cr3t@127.0.0.1:9/oauth")
    report = await check_deployment(settings, clock=FrozenClock())
    assert ids(report) == {"database.unreachable"}
    assert report.failed()
    [finding] = report.findings
    assert "s3cr3t" not in finding.message
    assert "app:***@" in finding.message
    assert "clients" in report.skipped


async def test_pending_migrations_skip_the_data_checks(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE unrelated (x INTEGER)")
    path.chmod(0o600)
    report = await check_deployment(
        production(database_url=f"sqlite:///{path}"), clock=FrozenClock()
    )
    assert ids(report) == {"migrations.pending"}
    assert report.failed(strict=True)
    assert not report.failed()
    assert "clients" in report.skipped


async def test_demo_rows_are_critical(sqlite_storage: SqlStorage) -> None:
    clock = FrozenClock()
    development = _on(
        sqlite_storage,
        env="development",
        password_hash_time_cost=1,
        password_hash_memory_cost=8,
    )
    await prepare(development, sqlite_storage, clock=clock)  # seeds admin/getroot and demo
    settings = _on(sqlite_storage)
    report = await check_deployment(settings, clock=clock, storage=sqlite_storage)
    assert {"demo-client.present", "demo-user.present"} <= ids(report)
    registry = ClientRegistry(sqlite_storage, clock=clock)
    assert await registry.delete("admin")
    user = await sqlite_storage.users.get_by_username(username="demo")
    assert user is not None
    assert await sqlite_storage.users.delete(user_id=user.user_id)
    report = await check_deployment(settings, clock=clock, storage=sqlite_storage)
    assert not {"demo-client.present", "demo-user.present"} & ids(report)


async def test_a_client_admin_with_another_secret_is_not_the_demo(
    sqlite_storage: SqlStorage,
) -> None:
    await ClientRegistry(sqlite_storage, clock=FrozenClock()).create(client_id="admin")
    report = await check_deployment(
        _on(sqlite_storage), clock=FrozenClock(), storage=sqlite_storage
    )
    assert "demo-client.present" not in ids(report)


CODE = frozenset({"authorization_code"})


@pytest.mark.parametrize(
    ("client", "expected"),
    [
        (
            Client(
                "spa",
                None,
                grant_types=CODE,
                client_type="public",
                auth_methods=frozenset({"none"}),
                redirect_uris=("https://app.example/cb",),
            ),
            set(),
        ),
        (
            Client(
                "spa",
                None,
                grant_types=CODE,
                client_type="public",
                auth_methods=frozenset({"none"}),
                redirect_uris=("https://app.example/cb",),
                require_pkce=False,
            ),
            {"client.public-without-pkce"},
        ),
        (
            Client("web", "h", grant_types=CODE, redirect_uris=("https://app.example/cb",)),
            set(),
        ),
        (
            Client(
                "web",
                "h",
                grant_types=CODE,
                redirect_uris=("https://app.example/cb",),
                require_pkce=False,
            ),
            {"client.pkce-relaxed"},
        ),
        (
            Client("web", "h", grant_types=CODE, redirect_uris=("http://app.example/cb",)),
            {"client.redirect-uri"},
        ),
        (
            Client("web", "h", grant_types=CODE, redirect_uris=("http://127.0.0.1/cb",)),
            set(),
        ),
        (
            Client("web", "h", grant_types=CODE, redirect_uris=("https://*.example/cb",)),
            {"client.redirect-uri"},
        ),
        (
            Client(
                "web",
                "h",
                grant_types=CODE,
                redirect_uris=("https://app.example/cb",),
                post_logout_redirect_uris=("https://app.example/#x",),
            ),
            {"client.redirect-uri"},
        ),
        (
            Client(
                "spa",
                None,
                grant_types=frozenset({"client_credentials"}),
                client_type="public",
                auth_methods=frozenset({"none"}),
            ),
            {"client.invalid"},
        ),
        (Client("svc", "h"), set()),
    ],
)
async def test_client_rules(sqlite_storage: SqlStorage, client: Client, expected: set[str]) -> None:
    await sqlite_storage.clients.add(client=client)  # as stored, past the registry's rules
    report = await check_deployment(
        _on(sqlite_storage), clock=FrozenClock(), storage=sqlite_storage
    )
    assert ids(report) - {"signing-key.none"} == expected, report.findings
    for finding in report.findings:
        assert client.client_id in finding.message or finding.id == "signing-key.none"


async def test_relaxed_pkce_lists_every_such_client(sqlite_storage: SqlStorage) -> None:
    registry = ClientRegistry(sqlite_storage, clock=FrozenClock())
    for client_id in ("web-b", "web-a"):
        await registry.create(
            client_id=client_id,
            grant_types=["authorization_code"],
            redirect_uris=["https://app.example/cb"],
            require_pkce=False,
        )
    report = await check_deployment(
        _on(sqlite_storage), clock=FrozenClock(), storage=sqlite_storage
    )
    [finding] = [f for f in report.findings if f.id == "client.pkce-relaxed"]
    assert finding.message == "2 confidential client(s) may skip PKCE: 'web-a', 'web-b'"
    assert finding.reference == "RFC 9700 §2.1.1"


@pytest.mark.parametrize(
    ("rotation", "age_days", "overdue"),
    [
        (30 * DAY, 30, False),
        (30 * DAY, 31, False),  # a day's grace: the schedule creates the next key itself
        (30 * DAY, 32, True),
        (0, 89, False),
        (0, 91, True),
    ],
)
async def test_signing_key_age(
    sqlite_storage: SqlStorage, rotation: int, age_days: int, overdue: bool
) -> None:
    clock = FrozenClock()
    settings = _on(sqlite_storage, key_rotation_interval=rotation)
    await build_key_manager(settings, sqlite_storage, clock).ensure_current()
    clock.advance(age_days * DAY)
    report = await check_deployment(settings, clock=clock, storage=sqlite_storage)
    assert ("signing-key.overdue" in ids(report)) is overdue, report.findings
    assert "signing-key.none" not in ids(report)


async def test_signing_keys_that_do_not_decrypt_or_use_another_alg(
    sqlite_storage: SqlStorage,
) -> None:
    clock = FrozenClock()
    settings = _on(sqlite_storage)
    await build_key_manager(settings, sqlite_storage, clock).ensure_current()
    report = await check_deployment(settings, clock=clock, storage=sqlite_storage)
    assert not report.findings
    other = _on(sqlite_storage, secret_key="another-" + STRONG)
    report = await check_deployment(other, clock=clock, storage=sqlite_storage)
    [finding] = report.findings
    assert finding.id == "signing-key.refused"
    assert "cannot decrypt signing key" in finding.message
    [_record] = await sqlite_storage.keys.list()
    forged = SigningKeyRecord(
        kid="hs",
        generation=9,
        alg="HS256",
        public_jwk="{}",
        private_key=b"",
        created_at=0,
        activates_at=0,
    )
    await sqlite_storage.keys.add(key=forged)
    report = await check_deployment(settings, clock=clock, storage=sqlite_storage)
    assert "signing-key.alg" in ids(report)
    [alg] = [f for f in report.findings if f.id == "signing-key.alg"]
    assert "'HS256'" in alg.message
    assert "keys remove hs" in alg.fix


# --- the report, the registry and the README -----------------------------------------------


async def test_severities_order_and_exit_rules() -> None:
    report = await check_deployment(
        production(env="development", access_token_ttl=7200, refresh_reuse_grace=1),
        clock=FrozenClock(),
    )
    severities = [finding.severity for finding in report.findings]
    assert severities == sorted(severities, key=["critical", "warning", "info"].index)
    assert report.failed()
    warning_only = await check_deployment(production(access_token_ttl=7200), clock=FrozenClock())
    assert not warning_only.failed()
    assert warning_only.failed(strict=True)
    text = format_report(warning_only, strict=True)
    assert "access-token.lifetime" in text
    assert "fix: set OAUTH_SERVER_ACCESS_TOKEN_TTL" in text
    assert text.splitlines()[-1].startswith("FAIL: 0 critical, 1 warning, 1 info (strict)")


def test_every_check_reports_only_declared_rules() -> None:
    declared = {rule.id for check in CHECKS for rule in check.rules}
    runner = {"database.unreachable", "database.absent", "migrations.pending", "check.failed"}
    assert declared | runner == set(RULES)
    assert all(re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", rule_id) for rule_id in RULES)


def test_the_readme_lists_every_rule() -> None:
    """README "Self-check": the table is `make readme`'s, from the declared rules."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    match = re.search(
        r"<!-- selfcheck-table:[^>]*-->\n(.*?)\n<!-- /selfcheck-table -->", readme, re.S
    )
    assert match is not None
    assert match.group(1) == rules_table()


async def test_a_check_that_raises_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(deployment: Deployment) -> list[Finding]:
        raise RuntimeError("boom")

    monkeypatch.setattr("oauth_server.selfcheck.CHECKS", [Check("broken", "settings", broken, ())])
    report = await check_deployment(production(), clock=FrozenClock())
    [failed] = [f for f in report.findings if f.id == "check.failed"]
    assert failed.severity == "critical"
    assert failed.message == "the check 'broken' failed: RuntimeError: boom"
    assert report.failed()


async def test_a_short_secret_file_with_stored_keys_is_one_finding(
    sqlite_storage: SqlStorage, tmp_path: Path
) -> None:
    clock = FrozenClock()
    await build_key_manager(_on(sqlite_storage), sqlite_storage, clock).ensure_current()
    path = _secret_file(tmp_path, "too-short")
    settings = _on(sqlite_storage, secret_key=None, secret_key_file=path)
    report = await check_deployment(settings, clock=clock, storage=sqlite_storage)
    assert ids(report) == {"secret-key.weak"}
