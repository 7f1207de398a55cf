"""Server metadata and the change feed in SQL."""

from __future__ import annotations

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from oauth_server.storage.models import Change
from oauth_server.storage.sql.purge import delete_batch
from oauth_server.storage.sql.schema import changes, server_meta

__all__ = ["SqlChangeFeed", "SqlMetaRepository", "announce"]


async def announce(conn: AsyncConnection, *, kind: str, key: str, now: int) -> None:
    """Append to the change feed inside the caller's transaction: the change and its
    announcement commit together or not at all."""
    await conn.execute(insert(changes).values(kind=kind, key=key, created_at=now))


class SqlMetaRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, *, key: str) -> str | None:
        async with self._engine.connect() as conn:
            result = await conn.execute(select(server_meta.c.value).where(server_meta.c.key == key))
            value = result.scalar_one_or_none()
        return None if value is None else str(value)

    async def set(self, *, key: str, value: str) -> None:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(server_meta).where(server_meta.c.key == key).values(value=value)
            )
            if result.rowcount == 0:
                try:
                    async with conn.begin_nested():
                        await conn.execute(insert(server_meta).values(key=key, value=value))
                except IntegrityError:  # inserted concurrently: last writer wins
                    await conn.execute(
                        update(server_meta).where(server_meta.c.key == key).values(value=value)
                    )


class SqlChangeFeed:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def publish(self, *, kind: str, key: str, now: int) -> None:
        async with self._engine.begin() as conn:
            await announce(conn, kind=kind, key=key, now=now)

    async def read(self, *, after: int, limit: int) -> list[Change]:
        async with self._engine.connect() as conn:
            result = await conn.execute(
                select(changes)
                .where(changes.c.change_id > after)
                .order_by(changes.c.change_id)
                .limit(limit)
            )
            return [
                Change(
                    change_id=row.change_id, kind=row.kind, key=row.key, created_at=row.created_at
                )
                for row in result
            ]

    async def last_id(self) -> int:
        async with self._engine.connect() as conn:
            result = await conn.execute(select(func.max(changes.c.change_id)))
            return int(result.scalar_one_or_none() or 0)

    async def purge_older(self, *, before: int, limit: int) -> int:
        newest = select(func.max(changes.c.change_id)).scalar_subquery()
        return await delete_batch(
            self._engine,
            changes,
            changes.c.change_id,
            (changes.c.created_at < before) & (changes.c.change_id < newest),
            limit=limit,
        )
