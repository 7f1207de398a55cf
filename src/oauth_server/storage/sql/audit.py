"""The audit trail in SQL: insert and read, never update or delete."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Insert, Select, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_server.storage.models import AuditQuery, AuditRecord
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


def _queryable(value: object) -> str | None:
    """An id as a query column holds it: printable ASCII (RFC 6749 A.1 VSCHAR), at most 255
    characters. Anything else — the NUL of a hostile client id, which PostgreSQL cannot store
    in text at all — stays in the event's data only, where it is escaped JSON."""
    if isinstance(value, str) and len(value) <= 255 and all(" " <= c <= "~" for c in value):
        return value
    return None


def _query_columns(data: str) -> dict[str, str | None]:
    """The event's ``client_id`` and ``user_id`` fields, copied to columns for queries."""
    fields = orjson.loads(data)
    return {
        "client_id": _queryable(fields.get("client_id")),
        "user_id": _queryable(fields.get("user_id")),
    }


def _newest_first(query: Select[Any]) -> Select[Any]:
    return query.order_by(
        audit_events.c.at_ms.desc(), audit_events.c.chain_id.desc(), audit_events.c.seq.desc()
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
                **_query_columns(r.data),
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
        query = _newest_first(select(audit_events)).limit(limit)
        async with self._engine.connect() as conn:
            return [_record(row) for row in await conn.execute(query)]

    async def query(self, *, query: AuditQuery, limit: int) -> list[AuditRecord]:
        events = audit_events.c
        select_ = select(audit_events)
        if query.kinds:
            select_ = select_.where(events.kind.in_(query.kinds))
        if query.client_id is not None:
            select_ = select_.where(events.client_id == query.client_id)
        if query.user_id is not None:
            select_ = select_.where(events.user_id == query.user_id)
        if query.since_ms is not None:
            select_ = select_.where(events.at_ms >= query.since_ms)
        if query.until_ms is not None:
            select_ = select_.where(events.at_ms < query.until_ms)
        if query.before is not None:
            select_ = select_.where(
                tuple_(events.at_ms, events.chain_id, events.seq) < query.before
            )
        async with self._engine.connect() as conn:
            rows = await conn.execute(_newest_first(select_).limit(limit))
            return [_record(row) for row in rows]
