"""The databases our server runs on in the benchmark: SQLite files in the run's temporary folder,
and PostgreSQL databases created for the run on 127.0.0.1:5432 and dropped after it."""

import asyncio
import os
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import asyncpg  # type: ignore[import-untyped]

from . import OAUTH_SERVER_CLI, REPO_DIR

POSTGRES_SERVER = "postgres@127.0.0.1:5432"
_POSTGRES_ADMIN_DSN = f"postgresql://{POSTGRES_SERVER}/postgres"
_DATABASE_PREFIX = "oauth_bench_"

Backend = Literal["sqlite", "postgresql"]


class DatabaseError(RuntimeError):
    """A benchmark database could not be created or migrated."""


@dataclass(frozen=True)
class Database:
    backend: Backend
    url: str  # OAUTH_SERVER_DATABASE_URL
    name: str  # the SQLite file, or the PostgreSQL database


def sqlite_database(path: Path) -> Database:
    return Database("sqlite", f"sqlite:///{path}", str(path))


def postgres_database(label: str) -> Database:
    """A database name of its own for this run (created by `provisioned`)."""
    name = f"{_DATABASE_PREFIX}{os.urandom(4).hex()}_{label}"
    return Database("postgresql", f"postgresql://{POSTGRES_SERVER}/{name}", name)


async def _admin() -> asyncpg.Connection:
    return await asyncpg.connect(_POSTGRES_ADMIN_DSN, timeout=5)


def postgres_version() -> str | None:
    """The server's version, or None when it does not answer."""

    async def version() -> str:
        connection = await _admin()
        try:
            return str(await connection.fetchval("SHOW server_version"))
        finally:
            await connection.close()

    try:
        return asyncio.run(version())
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return None


@contextmanager
def provisioned(database: Database) -> Iterator[Database]:
    """The database exists for the duration of the block: a PostgreSQL one is created first
    and dropped (with any session still on it) whatever ends the block."""
    if database.backend == "sqlite":
        yield database
        return
    try:
        asyncio.run(_execute(f'CREATE DATABASE "{database.name}"'))
    except (OSError, asyncpg.PostgresError, TimeoutError) as error:
        raise DatabaseError(f"cannot create {database.name}: {error}") from error
    try:
        yield database
    finally:
        asyncio.run(_execute(f'DROP DATABASE IF EXISTS "{database.name}" WITH (FORCE)'))


async def _execute(statement: str) -> None:
    connection = await _admin()
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def migrate(database: Database, env: Mapping[str, str]) -> None:
    """`oauth-server db upgrade`: the server's own migrations, as on its first start."""
    done = subprocess.run(
        [str(OAUTH_SERVER_CLI), "db", "upgrade"],
        env=os.environ | dict(env) | {"OAUTH_SERVER_DATABASE_URL": database.url},
        cwd=REPO_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise DatabaseError(f"db upgrade of {database.name} failed: {done.stderr.strip()}")
