"""``oauth-server users`` through click's runner, and the development demo user: created on
the first start with a random password shown once in the banner, refused in production."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from oauth_server.bootstrap import StartupRefused, prepare
from oauth_server.cli import main
from oauth_server.clock import SystemClock
from oauth_server.config import Settings
from oauth_server.services import build_accounts
from oauth_server.storage import ClientRevocation, open_storage
from tests.e2e.leaks import leaked
from tests.helpers import cli_env
from tests.process import ServerProcess

CHEAP_HASHING = {
    "OAUTH_SERVER_PASSWORD_HASH_TIME_COST": "1",
    "OAUTH_SERVER_PASSWORD_HASH_MEMORY_COST": "8",
}
PASSWORD = "correct horse battery staple"


class UsersCli:
    """The command line in process on the test's database, with cheap hashing, keeping every
    output so that a test can search them all for secrets."""

    def __init__(self, database_url: str) -> None:
        self._runner = CliRunner()
        self._env = {**cli_env(database_url), **CHEAP_HASHING}
        self.outputs: list[str] = []

    def __call__(self, *args: str, input: str | None = None) -> Result:
        result = self._runner.invoke(main, list(args), input=input, env=self._env)
        self.outputs.append(result.output)
        return result


@pytest.fixture
def users_cli(database_url: str) -> UsersCli:
    return UsersCli(database_url)


def test_user_lifecycle(users_cli: UsersCli, database_url: str) -> None:
    created = users_cli(
        "users", "create", "Alice", "--name", "Alice Example", "--given-name", "Alice",
        "--family-name", "Example", "--email", "alice@example.com", "--email-verified",
        "--password-stdin", "--json",
        input=PASSWORD + "\n",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    data = json.loads(created.stdout)
    assert data["username"] == "alice"
    assert data["preferred_username"] == "Alice"
    assert (data["email"], data["email_verified"], data["disabled"]) == (
        "alice@example.com",
        True,
        False,
    )
    assert "password_hash" not in data

    # Without --password-stdin: asked twice, hidden.
    prompted = users_cli("users", "create", "bob", input="another password\nanother password\n")
    assert prompted.exit_code == 0, prompted.output
    assert "Password:" in prompted.output
    assert "Repeat for confirmation:" in prompted.output
    assert "another password" not in prompted.output  # hidden input is not echoed

    listed = users_cli("users", "list", "--json")
    assert [u["username"] for u in json.loads(listed.stdout)] == ["alice", "bob"]
    assert "alice\t" in users_cli("users", "list").output
    shown = users_cli("users", "show", "ALICE", "--json")
    assert json.loads(shown.stdout) == data
    assert "preferred_username: Alice" in users_cli("users", "show", "alice").output

    assert users_cli("users", "disable", "alice").output.strip() == "disabled alice"
    assert users_cli("users", "disable", "alice").output.strip() == "alice was disabled"
    assert json.loads(users_cli("users", "show", "alice", "--json").stdout)["disabled"] is True
    assert users_cli("users", "enable", "alice").exit_code == 0
    new_password = "a new password entirely"
    changed = users_cli("users", "set-password", "alice", "--password-stdin", input=new_password)
    assert changed.exit_code == 0, changed.output
    assert asyncio.run(authenticates(database_url, "alice", new_password))
    assert not asyncio.run(authenticates(database_url, "alice", PASSWORD))

    assert users_cli("users", "delete", "alice").exit_code == 0
    assert users_cli("users", "show", "alice").exit_code == 1
    assert users_cli("users", "delete", "alice").exit_code == 1

    tail = users_cli("audit", "tail", "-n", "1000", "--json")
    events = [json.loads(line) for line in tail.stdout.splitlines()]
    user_events = [(e["kind"], e["data"]["username"]) for e in events if "username" in e["data"]]
    assert user_events == [
        ("user_created", "alice"),
        ("user_created", "bob"),
        ("user_disabled", "alice"),
        ("user_enabled", "alice"),
        ("user_password_changed", "alice"),
        ("user_deleted", "alice"),
    ]
    assert {e["data"]["user_id"] for e in events if e["data"].get("username") == "alice"} == {
        data["user_id"]
    }
    # No password — nor a hash — in any output or in the audit trail.
    everything = "\n".join(users_cli.outputs)
    assert leaked(everything, [PASSWORD, "another password", new_password, "$argon2"]) == []


def test_admin_users_are_made_by_flag_and_by_set_admin(users_cli: UsersCli) -> None:
    made = users_cli("users", "create", "root", "--admin", "--password-stdin", "--json",
                     input=PASSWORD + "\n")  # fmt: skip
    assert made.exit_code == 0, made.output
    assert json.loads(made.stdout)["is_admin"] is True
    plain = users_cli("users", "create", "carol", "--password-stdin", "--json", input=PASSWORD)
    assert json.loads(plain.stdout)["is_admin"] is False
    assert "carol\t" in users_cli("users", "list").output
    rows = dict(line.split("\t", 1) for line in users_cli("users", "list").output.splitlines())
    assert rows["root"].split("\t")[2] == "admin"
    assert rows["carol"].split("\t")[2] == "user"

    assert users_cli("users", "set-admin", "Carol").output.strip() == "carol is an admin"
    assert users_cli("users", "set-admin", "carol").output.strip() == "carol was an admin already"
    assert json.loads(users_cli("users", "show", "carol", "--json").stdout)["is_admin"] is True
    withdrawn = users_cli("users", "set-admin", "carol", "--withdraw")
    assert withdrawn.output.strip() == "carol is no longer an admin"
    assert json.loads(users_cli("users", "show", "carol", "--json").stdout)["is_admin"] is False
    missing = users_cli("users", "set-admin", "nobody")
    assert missing.exit_code == 1
    assert "no user 'nobody'" in missing.output

    tail = users_cli("audit", "tail", "-n", "100", "--json")
    kinds = [json.loads(line)["kind"] for line in tail.stdout.splitlines()]
    assert [k for k in kinds if k.startswith("user_admin")] == [
        "user_admin_granted",  # root, at creation
        "user_admin_granted",  # carol
        "user_admin_withdrawn",
    ]


async def authenticates(database_url: str, username: str, password: str) -> bool:
    from oauth_server.accounts import AuthenticationFailed

    storage = open_storage(database_url)
    settings = Settings(database_url=database_url, password_hash_memory_cost=8)
    accounts = build_accounts(settings, storage, SystemClock())
    try:
        await accounts.authenticate(username, password)
        return True
    except AuthenticationFailed:
        return False
    finally:
        accounts.hashing.close()
        await storage.close()


def test_a_duplicate_username_is_a_clear_error(users_cli: UsersCli) -> None:
    assert users_cli("users", "create", "alice", "--password-stdin", input=PASSWORD).exit_code == 0
    again = users_cli("users", "create", "ALICE", "--password-stdin", input=PASSWORD)
    assert again.exit_code == 1
    assert "a user 'alice' exists already" in again.output
    assert "Traceback" not in again.output


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("users", "create", "bad name", "--password-stdin"), PASSWORD, "1-64 characters"),
        (("users", "create", "alice", "--password-stdin"), "short", "at least 8"),
        (("users", "create", "alice", "--password-stdin"), "", "no password on standard input"),
        (("users", "create", "alice", "--password-stdin"), "a\nb c d e f", "alone on one line"),
        (("users", "create", "alice", "--password-stdin"), "x" * 2000, "at most 1024"),
        (("users", "create", "alice", "--email", "nope", "--password-stdin"), PASSWORD, "@"),
        (("users", "create", "alice"), "one password\nanother one\n", "do not match"),
        (("users", "set-password", "nobody", "--password-stdin"), PASSWORD, "no user 'nobody'"),
        (("users", "show", "nobody"), None, "no user 'nobody'"),
        (("users", "disable", "nobody"), None, "no user 'nobody'"),
        (("users", "enable", "nobody"), None, "no user 'nobody'"),
        (("users", "delete", "nobody"), None, "no user 'nobody'"),
    ],
)
def test_bad_input_exits_non_zero_without_traceback(
    users_cli: UsersCli, args: tuple[str, ...], stdin: str | None, message: str
) -> None:
    result = users_cli(*args, input=stdin)
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert json.loads(users_cli("users", "list", "--json").stdout) == []


def test_a_password_is_never_an_argument(users_cli: UsersCli) -> None:
    result = users_cli("users", "create", "alice", "--password", PASSWORD)
    assert result.exit_code == 2
    assert "No such option" in result.output


PRODUCTION: dict[str, object] = {
    "env": "production",
    "issuer": "https://auth.example",
    "demo_data": None,
    "password_hash_time_cost": 2,
    "password_hash_memory_cost": 19_456,
}


def dev_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": "development",
        "database_url": database_url,
        "secret_key": "test-secret-key-of-at-least-32-characters",
        "password_hash_time_cost": 1,
        "password_hash_memory_cost": 8,
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


async def test_the_demo_user_exists_in_development_and_is_refused_in_production(
    database_url: str,
) -> None:
    storage = open_storage(database_url)
    clock = SystemClock()
    try:
        first = await prepare(dev_settings(database_url), storage, clock=clock)
        assert first.demo_user_password is not None
        assert len(first.demo_user_password) >= 22  # 128 random bits
        second = await prepare(dev_settings(database_url), storage, clock=clock)
        assert second.demo_user_password is None  # shown once: it is not kept anywhere
        assert await authenticates(database_url, "demo", first.demo_user_password)
        demo = await storage.users.get_by_username(username="demo")
        assert demo is not None
        assert (demo.email, demo.email_verified) == ("demo@example.com", True)
        assert first.demo_user_password not in demo.password_hash

        production = dev_settings(database_url, **PRODUCTION)
        with pytest.raises(StartupRefused, match="demo user 'demo' exists") as refused:
            await prepare(production, storage, clock=clock)
        assert "oauth-server users delete demo" in str(refused.value)
        await storage.clients.delete(
            client_id="admin",
            revocation=ClientRevocation(client_id="admin", revoked_at=0, expires_at=0),
        )
        await storage.users.delete(user_id=demo.user_id)
        report = await prepare(production, storage, clock=clock)
        assert report.demo_user_password is None
        assert await storage.users.get_by_username(username="demo") is None
        # Deleted in development, the demo user does not come back either.
        await prepare(dev_settings(database_url), storage, clock=clock)
        assert await storage.users.get_by_username(username="demo") is None
    finally:
        await storage.close()


async def test_an_operators_own_user_named_demo_is_left_alone(database_url: str) -> None:
    storage = open_storage(database_url)
    settings = dev_settings(database_url)
    accounts = build_accounts(settings, storage, SystemClock())
    try:
        await storage.migrate()
        mine = await accounts.create("demo", PASSWORD)
        report = await prepare(settings, storage, clock=SystemClock())
        assert report.demo_user_password is None
        assert await storage.users.get(user_id=mine.user_id) == mine
        production = dev_settings(database_url, **PRODUCTION)
        with pytest.raises(StartupRefused) as refused:
            await prepare(production, storage, clock=SystemClock())
        assert "demo user" not in str(refused.value)  # only the demo client is the problem
    finally:
        accounts.hashing.close()
        await storage.close()


@pytest.mark.slow
def test_the_banner_shows_the_demo_users_password_once(database_url: str, tmp_path: Path) -> None:
    env = {
        "OAUTH_SERVER_DATABASE_URL": database_url,
        "OAUTH_SERVER_SECRET_KEY_FILE": str(tmp_path / "secret_key"),
        "OAUTH_SERVER_ENV": "development",
        **CHEAP_HASHING,
    }
    server = ServerProcess(env, log=tmp_path / "server.log")
    server.start().stop()
    shown = re.findall(r"demo user: demo / (\S+)", server.output())
    assert len(shown) == 1
    assert asyncio.run(authenticates(database_url, "demo", shown[0]))
    server.start().stop()  # a second start: the user exists, its password is not known
    assert len(re.findall(r"demo user: demo / ", server.output())) == 1
