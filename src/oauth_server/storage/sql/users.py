"""Users in SQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_server.storage.models import User, UserProfileChanges
from oauth_server.storage.protocols import AlreadyExists
from oauth_server.storage.sql.schema import users as table
from oauth_server.storage.sql.search import contains_any

__all__ = ["SqlUserRepository"]


def _row_to_user(row: Any) -> User:
    return User(
        user_id=row.user_id,
        username=row.username,
        password_hash=row.password_hash,
        name=row.name,
        given_name=row.given_name,
        family_name=row.family_name,
        preferred_username=row.preferred_username,
        email=row.email,
        email_verified=bool(row.email_verified),
        disabled=bool(row.disabled),
        is_admin=bool(row.is_admin),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _user_to_row(user: User) -> dict[str, Any]:
    return {
        "user_id": user.user_id,
        "username": user.username,
        "password_hash": user.password_hash,
        "name": user.name,
        "given_name": user.given_name,
        "family_name": user.family_name,
        "preferred_username": user.preferred_username,
        "email": user.email,
        "email_verified": user.email_verified,
        "disabled": user.disabled,
        "is_admin": user.is_admin,
        "created_at": user.created_at,
        "updated_at": user.updated_at,
    }


class SqlUserRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, *, user: User) -> None:
        try:
            async with self._engine.begin() as conn:
                await conn.execute(insert(table).values(**_user_to_row(user)))
        except IntegrityError:
            raise AlreadyExists(user.username) from None

    async def get(self, *, user_id: str) -> User | None:
        return await self._one(table.c.user_id == user_id)

    async def get_by_username(self, *, username: str) -> User | None:
        return await self._one(table.c.username == username)

    async def _one(self, condition: Any) -> User | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(table).where(condition))).first()
        return _row_to_user(row) if row else None

    async def list(
        self, *, limit: int, after: str | None = None, search: str | None = None
    ) -> list[User]:
        query = select(table).order_by(table.c.username).limit(limit)
        if after is not None:
            query = query.where(table.c.username > after)
        if search:
            query = query.where(contains_any(search, table.c.username, table.c.name, table.c.email))
        async with self._engine.connect() as conn:
            return [_row_to_user(row) for row in await conn.execute(query)]

    async def update_profile(
        self, *, user_id: str, changes: UserProfileChanges, now: int
    ) -> User | None:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(table)
                .where(table.c.user_id == user_id)
                .values(**changes.as_columns(), updated_at=now)
                .returning(*table.c)
            )
            row = result.first()
        return _row_to_user(row) if row else None

    async def set_password_hash(
        self, *, user_id: str, password_hash: str, replaces: str | None = None
    ) -> bool:
        condition = (table.c.user_id == user_id) & (table.c.password_hash != password_hash)
        if replaces is not None:
            condition &= table.c.password_hash == replaces
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(table).where(condition).values(password_hash=password_hash)
            )
        return result.rowcount == 1

    async def set_disabled(self, *, user_id: str, disabled: bool) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(table)
                .where((table.c.user_id == user_id) & (table.c.disabled != disabled))
                .values(disabled=disabled)
            )
        return result.rowcount == 1

    async def set_admin(self, *, user_id: str, is_admin: bool) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(table)
                .where((table.c.user_id == user_id) & (table.c.is_admin != is_admin))
                .values(is_admin=is_admin)
            )
        return result.rowcount == 1

    async def delete(self, *, user_id: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(table).where(table.c.user_id == user_id))
        return result.rowcount == 1
