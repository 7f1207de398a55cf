"""Apply Alembic migrations to the configured database."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_server.storage.sql.engine import BEGIN_IMMEDIATE

__all__ = ["current_revision", "head_revision", "upgrade"]

MIGRATIONS = Path(__file__).with_name("migrations")
# Any constant works; it only has to be the same for every instance of the server.
_PG_MIGRATION_LOCK = 0x6F617574  # "oaut"


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection, revision: str = "head") -> None:
    if connection.dialect.name == "postgresql":
        # Many instances may start at once: one migrates, the others wait, then find it done.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
    command.upgrade(_config(connection), revision)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the database schema to the latest revision (idempotent, safe to run concurrently
    on PostgreSQL); tests of a migration stop at an earlier ``revision``."""
    async with engine.connect() as conn:
        conn.info[BEGIN_IMMEDIATE] = True  # SQLite: wait for the write lock up front
        async with conn.begin():
            await conn.run_sync(_upgrade, revision)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )
