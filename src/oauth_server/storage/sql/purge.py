"""Bounded deletes: at most ``limit`` rows per statement, each batch its own transaction."""

from __future__ import annotations

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.schema import Column, Table

__all__ = ["delete_batch"]


async def delete_batch(
    engine: AsyncEngine,
    table: Table,
    key: Column[object],
    condition: ColumnElement[bool],
    *,
    limit: int,
) -> int:
    """``DELETE FROM table WHERE key IN (SELECT key … WHERE condition LIMIT n)``.

    A short transaction per batch keeps the write lock (SQLite) or the row locks (PostgreSQL)
    brief, so token writes are never stuck behind a purge. ``SKIP LOCKED`` (PostgreSQL; SQLite
    has one writer at a time and needs nothing) lets purgers in several processes share the
    work instead of queueing on each other's rows.
    """
    chosen = select(key).where(condition).limit(limit).with_for_update(skip_locked=True)
    async with engine.begin() as conn:
        result = await conn.execute(delete(table).where(key.in_(chosen)))
    return int(result.rowcount)
