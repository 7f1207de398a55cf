"""Shared fixtures: backends, settings, the app, a frozen clock, and strict mode.

Strict mode (``OAUTH_SERVER_TEST_STRICT=1``, set by ``.ci/run``): a test that would be skipped
because PostgreSQL, Redis, Chromium or Node is missing fails instead, so CI cannot go green by
testing less.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Generator, Iterator, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from click.testing import CliRunner, Result

from oauth_server.cli import main
from oauth_server.clock import FrozenClock
from oauth_server.config import Settings
from oauth_server.services import Services, build_services
from oauth_server.storage import SqlStorage, open_storage
from oauth_server.web.api import FastRouter
from oauth_server.web.app import create_app
from tests import process
from tests.helpers import app_services, cli_env

STRICT = os.environ.get("OAUTH_SERVER_TEST_STRICT") == "1"

# The suite sets its own configuration: a developer's OAUTH_SERVER_* must not leak into it.
for _name in [n for n in os.environ if n.startswith("OAUTH_SERVER_")]:
    if not _name.startswith("OAUTH_SERVER_TEST_"):
        del os.environ[_name]
PG_ADMIN_URL = os.environ.get(
    "OAUTH_SERVER_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def unavailable(reason: str) -> None:
    """Skip for lack of an external service — or fail in strict mode."""
    if STRICT:
        pytest.fail(f"strict mode: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[Any]
) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if STRICT and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"strict mode forbids skips: {report.longrepr}"


FULL_SUITE = (
    "The full suite needs PostgreSQL at 127.0.0.1:5432 (trust auth; "
    "OAUTH_SERVER_TEST_PG_ADMIN_URL to change it) and Redis at 127.0.0.1:6379; run it as "
    "`OAUTH_SERVER_TEST_STRICT=1 make test`, where a skip fails the run (as in CI)."
)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter: Any) -> Iterator[None]:
    """End a run that skipped tests with a loud count of what was not tested, and why: a green
    run on a laptop without PostgreSQL must not pass for a full one. (The outermost wrapper, so
    it comes after the list of skips ``-ra`` prints, just before the final counts.)"""
    yield
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    reasons: Counter[str] = Counter()
    for report in skipped:
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reasons[reason.removeprefix("Skipped: ")] += 1
    terminalreporter.section(
        f"{len(skipped)} TESTS SKIPPED: this run did not test everything", sep="!", red=True
    )
    for reason, count in reasons.most_common():
        terminalreporter.write_line(f"{count:5} skipped: {reason}", red=True, bold=True)
    terminalreporter.write_line(FULL_SUITE, red=True)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # Before any fixture of the test is set up, module-scoped server fixtures included.
    process.current_test_is_slow = item.get_closest_marker("slow") is not None


# Fail first where it matters most (issue 14): the unit tests of the modules that decide
# whether a request is authorized run before every other test, then the other unit tests, then
# the rest in collection order. Each file keeps its own order, so module fixtures are set up once.
SECURITY_CRITICAL_UNIT_TESTS = (
    "test_opaque_mutants.py",
    "test_bearer_mutants.py",
    "test_jwt_mutants.py",
    "test_jwt_verifier.py",
    "test_client_auth_mutants.py",
    "test_crypto.py",
    "test_revoke_mutants.py",
    "test_code_grant_mutants.py",
    "test_refresh_grant_mutants.py",
    "test_signin_grants_mutants.py",
    "test_introspect_mutants.py",
    "test_scopes.py",
    "test_scope_audience_mutants.py",
    "test_clients_mutants.py",
    "test_token_endpoint.py",
    "test_params_mutants.py",
    "test_addresses_mutants.py",
)
_UNIT = Path(__file__).parent / "unit"


def _run_order(item: pytest.Item) -> tuple[int, int]:
    path = Path(item.path)
    if path.parent != _UNIT:
        return (2, 0)
    if path.name in SECURITY_CRITICAL_UNIT_TESTS:
        return (0, SECURITY_CRITICAL_UNIT_TESTS.index(path.name))
    return (1, 0)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_run_order)  # stable: collection order within each group


def _pg_url(database: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{database}"


def _pg_admin(sql: str) -> None:
    """Run one statement as the admin user, from any context (fixtures may already be inside
    an event loop, so this runs its own in a thread)."""

    async def run() -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=3)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A PostgreSQL database of this test session's own, dropped at the end."""
    name = f"oauth_test_{uuid.uuid4().hex[:12]}"
    try:
        _pg_admin(f'CREATE DATABASE "{name}"')
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        unavailable(f"PostgreSQL unreachable at {PG_ADMIN_URL}: {exc}")
    yield _pg_url(name)
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _truncate_all(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'alembic_version'"
        )
        if tables:
            names = ", ".join(f'"{row["tablename"]}"' for row in tables)
            await conn.execute(f"TRUNCATE {names} RESTART IDENTITY")
    finally:
        await conn.close()


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database on each backend: a fresh SQLite file, or the session's PostgreSQL
    database with every table emptied."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/oauth.db"
    url: str = request.getfixturevalue("pg_database")
    await _truncate_all(url)
    return url


@pytest.fixture
async def postgres_url(pg_database: str) -> str:
    """The session's PostgreSQL database, emptied (for tests about many instances)."""
    await _truncate_all(pg_database)
    return pg_database


@pytest.fixture
async def storage(database_url: str) -> AsyncIterator[SqlStorage]:
    """The storage backend alone, migrated and empty (no demo data, no services)."""
    opened = open_storage(database_url, pool_size=5)
    await opened.migrate()
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def sqlite_storage(tmp_path: Path) -> AsyncIterator[SqlStorage]:
    """A migrated, empty SQLite storage of the test's own (for unit tests that need a real
    database but not both backends)."""
    opened = open_storage(f"sqlite:///{tmp_path}/oauth.db")
    await opened.migrate()
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def run(database_url: str) -> Callable[..., Result]:
    """``run("clients", "list")``: the command line, in process (click's runner), on the test's
    database."""
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(main, list(args), env=cli_env(database_url))

    return invoke


@pytest.fixture
def clock() -> FrozenClock:
    """Frozen at the wall-clock second the test starts, so third-party verifiers (which read
    the wall clock) agree with the app until a test moves it."""
    return FrozenClock(float(int(time.time())))


@pytest.fixture
def settings(request: pytest.FixtureRequest, database_url: str) -> Settings:
    """The app's settings. A module or test that needs others says so with
    ``pytest.mark.settings(name=value, ...)`` (module marks first, the test's own last), which
    are applied on top of these, instead of redefining this fixture."""
    changes: dict[str, Any] = {}
    for marker in reversed(list(request.node.iter_markers("settings"))):
        changes.update(marker.kwargs)
    return Settings(
        **{
            "env": "development",
            "database_url": database_url,
            "demo_data": True,
            "cache_sync_interval": 0.05,
            "database_pool_size": 5,
            "secret_key": "test-secret-key-of-at-least-32-characters",
            # The smallest argon2id parameters: start-up hashes the demo user's password.
            "password_hash_time_cost": 1,
            "password_hash_memory_cost": 8,
            **changes,
        }
    )


@pytest.fixture
async def services(settings: Settings, clock: FrozenClock) -> AsyncIterator[Services]:
    """Core services on a migrated, demo-seeded database (for tests that skip HTTP)."""
    from oauth_server.bootstrap import prepare

    built = build_services(settings, clock=clock)
    await prepare(settings, built.storage, clock=clock)
    await built.start()
    try:
        yield built
    finally:
        await built.close()


@asynccontextmanager
async def lifespan(app: FastRouter) -> AsyncIterator[None]:
    """Drive the ASGI lifespan protocol, as uvicorn does, around the block."""
    inbox: asyncio.Queue[MutableMapping[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[MutableMapping[str, Any]] = asyncio.Queue()
    task = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, outbox.put)
    )
    await inbox.put({"type": "lifespan.startup"})
    started = await outbox.get()
    if started["type"] != "lifespan.startup.complete":
        await task
        raise RuntimeError(f"startup failed: {started}")
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await task


@pytest.fixture
async def app(settings: Settings, clock: FrozenClock) -> AsyncIterator[FastRouter]:
    application = create_app(settings, clock=clock)
    async with lifespan(application):
        yield application


@pytest.fixture
def app_svc(app: FastRouter) -> Services:
    """The services of the app under test (the ``services`` fixture is a separate set)."""
    return app_services(app)


@pytest.fixture
async def client(app: FastRouter) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
