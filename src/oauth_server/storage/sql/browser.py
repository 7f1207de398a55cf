"""Browser sessions, consents and interactions in SQL: hashes of the cookie values only."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_server.storage.models import (
    MAX_USER_AGENT,
    BrowserSession,
    Consent,
    Interaction,
    InteractionLogin,
)
from oauth_server.storage.sql.purge import delete_batch
from oauth_server.storage.sql.schema import browser_sessions, consents, interactions
from oauth_server.storage.sql.transactions import write_transaction

__all__ = ["SqlBrowserSessionRepository", "SqlConsentRepository", "SqlInteractionRepository"]


def _words(value: Iterable[str]) -> str:
    return " ".join(sorted(set(value)))


def _session(row: Any) -> BrowserSession:
    return BrowserSession(
        selector=bytes(row.selector),
        verifier_hash=bytes(row.verifier_hash),
        session_id=row.session_id,
        user_id=row.user_id,
        auth_time=row.auth_time,
        created_at=row.created_at,
        last_seen=row.last_seen,
        expires_at=row.expires_at,
        amr=tuple(row.amr.split()),
        ended_at=row.ended_at,
        user_agent=row.user_agent,
        address=row.address,
    )


class SqlBrowserSessionRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(self, *, session: BrowserSession) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(browser_sessions).values(
                    selector=session.selector,
                    verifier_hash=session.verifier_hash,
                    session_id=session.session_id,
                    user_id=session.user_id,
                    auth_time=session.auth_time,
                    amr=" ".join(session.amr),
                    created_at=session.created_at,
                    last_seen=session.last_seen,
                    expires_at=session.expires_at,
                    ended_at=session.ended_at,
                    user_agent=session.user_agent[:MAX_USER_AGENT],
                    address=session.address[:64],
                )
            )

    async def get(
        self, *, selector: bytes, verifier_hash: bytes, now: int
    ) -> BrowserSession | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(browser_sessions).where(browser_sessions.c.selector == selector)
                )
            ).first()
        if row is None or not hmac.compare_digest(bytes(row.verifier_hash), verifier_hash):
            return None
        if row.ended_at is not None or row.expires_at <= now:
            return None
        return _session(row)

    async def touch(self, *, session_id: str, now: int) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(browser_sessions)
                .where(browser_sessions.c.session_id == session_id)
                .where(browser_sessions.c.ended_at.is_(None))
                .where(browser_sessions.c.expires_at > now)
                .values(last_seen=now)
            )
        return bool(result.rowcount == 1)

    async def end(self, *, session_id: str, now: int) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(browser_sessions)
                .where(browser_sessions.c.session_id == session_id)
                .where(browser_sessions.c.ended_at.is_(None))
                .values(ended_at=now)
            )
        return bool(result.rowcount == 1)

    async def end_all_for_user(self, *, user_id: str, now: int) -> int:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(browser_sessions)
                .where(browser_sessions.c.user_id == user_id)
                .where(browser_sessions.c.ended_at.is_(None))
                .values(ended_at=now)
            )
        return int(result.rowcount)

    async def end_for_user(self, *, user_id: str, session_id: str, now: int) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(browser_sessions)
                .where(browser_sessions.c.session_id == session_id)
                .where(browser_sessions.c.user_id == user_id)
                .where(browser_sessions.c.ended_at.is_(None))
                .where(browser_sessions.c.expires_at > now)
                .values(ended_at=now)
            )
        return bool(result.rowcount == 1)

    async def list_for_user(self, *, user_id: str, now: int) -> list[BrowserSession]:
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(browser_sessions)
                .where(browser_sessions.c.user_id == user_id)
                .where(browser_sessions.c.ended_at.is_(None))
                .where(browser_sessions.c.expires_at > now)
                .order_by(browser_sessions.c.last_seen.desc(), browser_sessions.c.session_id.asc())
            )
            return [_session(row) for row in rows]

    async def purge_expired(self, *, before: int, limit: int) -> int:
        return await delete_batch(
            self._engine,
            browser_sessions,
            browser_sessions.c.selector,
            or_(browser_sessions.c.expires_at < before, browser_sessions.c.ended_at < before),
            limit=limit,
        )


class SqlConsentRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def grant(
        self, *, user_id: str, client_id: str, scopes: Iterable[str], now: int
    ) -> Consent:
        added = set(scopes)
        key = (consents.c.user_id == user_id) & (consents.c.client_id == client_id)
        async with write_transaction(self._engine) as conn:
            for _attempt in range(2):
                row = (await conn.execute(select(consents).where(key).with_for_update())).first()
                if row is not None:
                    granted = frozenset(row.scopes.split()) | added
                    await conn.execute(
                        update(consents).where(key).values(scopes=_words(granted), updated_at=now)
                    )
                    return Consent(user_id, client_id, granted, now)
                try:
                    async with conn.begin_nested():
                        await conn.execute(
                            insert(consents).values(
                                user_id=user_id,
                                client_id=client_id,
                                scopes=_words(added),
                                updated_at=now,
                            )
                        )
                except IntegrityError:  # granted concurrently: merge into that row
                    continue
                return Consent(user_id, client_id, frozenset(added), now)
        raise RuntimeError("consent row vanished while granting")  # pragma: no cover

    async def get(self, *, user_id: str, client_id: str) -> Consent | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(consents)
                    .where(consents.c.user_id == user_id)
                    .where(consents.c.client_id == client_id)
                )
            ).first()
        if row is None:
            return None
        return Consent(row.user_id, row.client_id, frozenset(row.scopes.split()), row.updated_at)

    async def revoke(self, *, user_id: str, client_id: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(consents)
                .where(consents.c.user_id == user_id)
                .where(consents.c.client_id == client_id)
            )
        return bool(result.rowcount == 1)

    async def list_for_user(self, *, user_id: str) -> list[Consent]:
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(consents).where(consents.c.user_id == user_id).order_by(consents.c.client_id)
            )
            return [
                Consent(row.user_id, row.client_id, frozenset(row.scopes.split()), row.updated_at)
                for row in rows
            ]


def _interaction(row: Any) -> Interaction:
    return Interaction(
        selector=bytes(row.selector),
        verifier_hash=bytes(row.verifier_hash),
        browser_hash=bytes(row.browser_hash),
        client_id=row.client_id,
        params=row.params,
        created_at=row.created_at,
        expires_at=row.expires_at,
        user_id=row.user_id,
        auth_time=row.auth_time,
        amr=tuple(row.amr.split()),
        session_id=row.session_id,
        consented=None if row.consented is None else frozenset(row.consented.split()),
        completed_at=row.completed_at,
    )


def _matches(row: Any, verifier_hash: bytes, browser_hash: bytes) -> bool:
    # Both compared, in constant time, whatever the first result.
    same_id = hmac.compare_digest(bytes(row.verifier_hash), verifier_hash)
    same_browser = hmac.compare_digest(bytes(row.browser_hash), browser_hash)
    return same_id & same_browser


class SqlInteractionRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(self, *, interaction: Interaction) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(interactions).values(
                    selector=interaction.selector,
                    verifier_hash=interaction.verifier_hash,
                    browser_hash=interaction.browser_hash,
                    client_id=interaction.client_id,
                    params=interaction.params,
                    created_at=interaction.created_at,
                    expires_at=interaction.expires_at,
                    user_id=interaction.user_id,
                    auth_time=interaction.auth_time,
                    amr=" ".join(interaction.amr),
                    session_id=interaction.session_id,
                    consented=None
                    if interaction.consented is None
                    else _words(interaction.consented),
                    completed_at=interaction.completed_at,
                )
            )

    async def get(
        self, *, selector: bytes, verifier_hash: bytes, browser_hash: bytes, now: int
    ) -> Interaction | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(interactions).where(interactions.c.selector == selector))
            ).first()
        if row is None or not _matches(row, verifier_hash, browser_hash):
            return None
        if row.completed_at is not None or row.expires_at <= now:
            return None
        return _interaction(row)

    async def update(
        self,
        *,
        selector: bytes,
        now: int,
        login: InteractionLogin | None = None,
        consented: Iterable[str] | None = None,
    ) -> Interaction | None:
        values: dict[str, Any] = {}
        if login is not None:
            values.update(
                user_id=login.user_id,
                auth_time=login.auth_time,
                amr=" ".join(login.amr),
                session_id=login.session_id,
            )
        if consented is not None:
            values["consented"] = _words(consented)
        query = (
            update(interactions)
            .where(interactions.c.selector == selector)
            .where(interactions.c.completed_at.is_(None))
            .where(interactions.c.expires_at > now)
        )
        async with self._engine.begin() as conn:
            if not values:
                query = query.values(selector=interactions.c.selector)
            else:
                query = query.values(**values)
            row = (await conn.execute(query.returning(*interactions.c))).first()
        return None if row is None else _interaction(row)

    async def complete(
        self, *, selector: bytes, verifier_hash: bytes, browser_hash: bytes, now: int
    ) -> Interaction | None:
        async with write_transaction(self._engine) as conn:
            row = (
                await conn.execute(
                    select(interactions)
                    .where(interactions.c.selector == selector)
                    .with_for_update()
                )
            ).first()
            if row is None or not _matches(row, verifier_hash, browser_hash):
                return None
            done = await conn.execute(
                update(interactions)
                .where(interactions.c.selector == selector)
                .where(interactions.c.completed_at.is_(None))
                .where(interactions.c.expires_at > now)
                .values(completed_at=now)
            )
            if done.rowcount != 1:
                return None
        return replace(_interaction(row), completed_at=now)

    async def delete(self, *, selector: bytes) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(interactions).where(interactions.c.selector == selector)
            )
        return bool(result.rowcount == 1)

    async def purge_expired(self, *, before: int, limit: int) -> int:
        return await delete_batch(
            self._engine,
            interactions,
            interactions.c.selector,
            or_(interactions.c.expires_at < before, interactions.c.completed_at < before),
            limit=limit,
        )
