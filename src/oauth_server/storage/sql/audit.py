"""The audit trail in SQL: insert and read, never update or delete."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Insert, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_server.storage.models import AuditRecord
from oauth_server.storage.sql.schema import audit_events

__all__ = ["SqlAuditRepository"]


def _record(row: Any) -> AuditRecord:
    return AuditRecord(
        chain_id=row.chain_id,
        seq=row.seq,
        at_ms=row.at_ms,
        kind=row.kind,
        data=row.data,
        digest=bytes(row.digest),
    )


def _insert_ignoring_duplicates(dialect: str) -> Insert:
    # Both backends spell "skip rows whose key exists" the same way, in their own dialect.
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(audit_events).on_conflict_do_nothing(index_elements=["chain_id", "seq"])


class SqlAuditRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._insert = _insert_ignoring_duplicates(engine.dialect.name)

    async def append(self, *, records: Sequence[AuditRecord]) -> None:
        if not records:
            return
        rows = [
            {
                "chain_id": r.chain_id,
                "seq": r.seq,
                "at_ms": r.at_ms,
                "kind": r.kind,
                "data": r.data,
                "digest": r.digest,
            }
            for r in records
        ]
        async with self._engine.begin() as conn:
            await conn.execute(self._insert, rows)

    async def scan(self, *, after: tuple[str, int] | None, limit: int) -> list[AuditRecord]:
        query = select(audit_events)
        if after is not None:
            query = query.where(tuple_(audit_events.c.chain_id, audit_events.c.seq) > after)
        query = query.order_by(audit_events.c.chain_id, audit_events.c.seq).limit(limit)
        async with self._engine.connect() as conn:
            return [_record(row) for row in await conn.execute(query)]

    async def recent(self, *, limit: int) -> list[AuditRecord]:
        query = (
            select(audit_events)
            .order_by(
                audit_events.c.at_ms.desc(),
                audit_events.c.chain_id.desc(),
                audit_events.c.seq.desc(),
            )
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            return [_record(row) for row in await conn.execute(query)]
