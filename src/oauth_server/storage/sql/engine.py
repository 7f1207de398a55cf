"""Engine creation: the database URL picks the driver; SQLite gets WAL and a busy timeout.

Both backends get a fixed pool: ``pool_size`` connections at most (no overflow), a checkout
waiting at most :data:`DATABASE_TIMEOUT` for one. A new SQLite database file is created
readable and writable by its owner only (0600), in a folder created likewise (0700); SQLite
gives its ``-wal`` and ``-shm`` files the database file's permissions.
"""

from __future__ import annotations

import os
import sqlite3
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import Connection, Engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

__all__ = [
    "BEGIN_IMMEDIATE",
    "DATABASE_TIMEOUT",
    "async_url",
    "create_engine",
    "create_private_file",
    "create_sync_sqlite_engine",
    "sqlite_file",
]


def async_url(url: str) -> str:
    """Map ``sqlite:///…`` and ``postgresql://…`` to their asyncio drivers."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif backend in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    else:
        raise ValueError(f"unsupported database URL scheme: {parsed.drivername}")
    return parsed.render_as_string(hide_password=False)


DATABASE_TIMEOUT = 3.0
"""The longest wait for a pooled connection (both backends); for PostgreSQL also the longest
wait for a pooled connection, for a new connection, and for one
statement. Past it the operation fails and the request answers 503. When the database stops
answering (a partition: nothing refused, nothing answered) a request meets at most one of each
(a pool wait, then a statement on a dead pooled connection) plus asyncpg's 2 s to close that
connection: it is answered within ~8 s, not left hanging. Every statement of this server is a
point read or write, so a statement that needs longer means the database is in trouble."""

BEGIN_IMMEDIATE = "sqlite_begin_immediate"
"""Set this key in a connection's ``info`` to start its next transaction with the write lock
(for read-then-write transactions such as migrations, which would otherwise fail with
"database is locked" instead of waiting)."""


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin: the module's own
    # implicit BEGIN skips DDL, which would leave migrations non-transactional.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL: readers never block the writer; synchronous=NORMAL is durable against process
    # crashes (the WAL is in the OS page cache), which is what the crash-safety test checks.
    cursor.execute("PRAGMA busy_timeout=10000")
    # Switching a brand-new database file to WAL needs an exclusive lock and SQLite answers
    # "database is locked" at once (no busy handler) when another connection opens it at the
    # same moment — several instances starting together. The mode is persistent, so a short
    # retry finds it already switched.
    for attempt in range(100):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 99:
                raise
            time.sleep(0.05)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    immediate = conn.info.pop(BEGIN_IMMEDIATE, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def sqlite_file(url: str) -> str | None:
    """The database file of a file-based SQLite URL, else ``None``."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file::memory:"):
        return None
    return database


def create_sync_sqlite_engine(path: str, *, wait_for_locks: bool = True) -> Engine:
    """A synchronous engine on the same SQLite file, with the same pragmas and transactions;
    without ``wait_for_locks`` a busy database fails at once instead of waiting."""
    # One connection, used only by the batch writer.
    engine = sqlalchemy.create_engine(f"sqlite:///{path}", pool_size=1, max_overflow=0)
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    if not wait_for_locks:
        event.listen(engine, "connect", _no_busy_wait)
    return engine


def _no_busy_wait(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA busy_timeout=0")


def create_private_file(path: str) -> None:
    """Create the SQLite database file ``path`` (and its folder) for its owner only, unless it
    exists: SQLite would create it 0644, and its ``-wal``/``-shm`` files after it."""
    file = Path(path)
    if not file.parent.exists():
        file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # An existing database keeps the permissions its owner gave it.
    with suppress(FileExistsError):
        os.close(os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """Create the async engine for ``url`` with a fixed pool of ``pool_size`` connections;
    create a new SQLite file (and its folder) private to its owner."""
    full = async_url(url)
    parsed = make_url(full)
    # No overflow: pool_size is the most connections this engine opens (the README promises
    # it), and a request finding them all busy waits DATABASE_TIMEOUT, then gets 503.
    pool: dict[str, Any] = {
        "pool_size": pool_size,
        "max_overflow": 0,
        "pool_timeout": DATABASE_TIMEOUT,
    }
    if parsed.get_backend_name() == "sqlite":
        database = sqlite_file(full)
        if database is not None:
            create_private_file(database)
        # An in-memory database lives in one connection (SQLAlchemy's own pool for it).
        engine = create_async_engine(full, **(pool if database is not None else {}))
        event.listen(engine.sync_engine, "connect", _sqlite_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    return create_async_engine(
        full,
        **pool,
        pool_recycle=1800,
        # asyncpg's prepared-statement cache makes the hot queries one round trip.
        connect_args={"timeout": DATABASE_TIMEOUT, "command_timeout": DATABASE_TIMEOUT},
    )
