"""Restaurants in SQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from oauth_server.storage.models import RESTAURANTS_CHANGE, Restaurant, RestaurantChanges
from oauth_server.storage.protocols import AlreadyExists
from oauth_server.storage.sql.misc import announce
from oauth_server.storage.sql.schema import restaurants as table

__all__ = ["SqlRestaurantRepository"]

_COLUMNS = ("name", "address", "open", "close", "updated_at")


def _row_to_restaurant(row: Any) -> Restaurant:
    return Restaurant(
        restaurant_id=row.restaurant_id,
        name=row.name,
        address=row.address,
        open=row.open,
        close=row.close,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _restaurant_to_row(restaurant: Restaurant) -> dict[str, Any]:
    return {
        "restaurant_id": restaurant.restaurant_id,
        "name": restaurant.name,
        "address": restaurant.address,
        "open": restaurant.open,
        "close": restaurant.close,
        "created_at": restaurant.created_at,
        "updated_at": restaurant.updated_at,
    }


async def _changed(conn: AsyncConnection, key: str, now: int) -> None:
    await announce(conn, kind=RESTAURANTS_CHANGE, key=key, now=now)


class SqlRestaurantRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def list(self, *, limit: int, after: str | None = None) -> list[Restaurant]:
        query = select(table).order_by(table.c.restaurant_id).limit(limit)
        if after is not None:
            query = query.where(table.c.restaurant_id > after)
        async with self._engine.connect() as conn:
            result = await conn.execute(query)
            return [_row_to_restaurant(row) for row in result]

    async def get(self, *, restaurant_id: str) -> Restaurant | None:
        async with self._engine.connect() as conn:
            result = await conn.execute(select(table).where(table.c.restaurant_id == restaurant_id))
            row = result.first()
        return _row_to_restaurant(row) if row else None

    async def add(self, *, restaurant: Restaurant) -> None:
        try:
            async with self._engine.begin() as conn:
                await conn.execute(insert(table).values(**_restaurant_to_row(restaurant)))
                await _changed(conn, restaurant.restaurant_id, restaurant.updated_at)
        except IntegrityError:
            raise AlreadyExists(restaurant.restaurant_id) from None

    async def add_many(self, *, restaurants: Sequence[Restaurant]) -> int:
        if not restaurants:
            return 0
        rows = [_restaurant_to_row(restaurant) for restaurant in restaurants]
        dialect = postgresql if self._engine.dialect.name == "postgresql" else sqlite
        statement = dialect.insert(table)
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.restaurant_id],
            set_={column: statement.excluded[column] for column in _COLUMNS},
        )
        async with self._engine.begin() as conn:
            await conn.execute(statement, rows)
            await _changed(conn, "*", max(r.updated_at for r in restaurants))
        return len(rows)

    async def update(
        self, *, restaurant_id: str, changes: RestaurantChanges, now: int
    ) -> Restaurant | None:
        values: dict[str, Any] = {**changes.as_columns(), "updated_at": now}
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(table)
                .where(table.c.restaurant_id == restaurant_id)
                .values(**values)
                .returning(*table.c)
            )
            row = result.first()
            if row is not None:
                await _changed(conn, restaurant_id, now)
        return _row_to_restaurant(row) if row else None

    async def delete(self, *, restaurant_id: str, now: int) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(table).where(table.c.restaurant_id == restaurant_id))
            deleted = result.rowcount == 1
            if deleted:
                await _changed(conn, restaurant_id, now)
        return deleted

    async def count(self) -> int:
        async with self._engine.connect() as conn:
            result = await conn.execute(select(func.count()).select_from(table))
            return int(result.scalar_one())
