"""In-memory stand-ins for repositories, for unit tests of the core (not a storage backend)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Unpack

import orjson

from oauth_server.audit import AuditFields, AuditKind
from oauth_server.crypto import hash_secret
from oauth_server.storage.models import (
    AccessTokenRecord,
    AuditQuery,
    AuditRecord,
    Client,
    ClientRevocation,
)


class MemoryClients:
    def __init__(self, *clients: Client) -> None:
        self.rows = {client.client_id: client for client in clients}
        self.lookups = 0

    async def get(self, *, client_id: str) -> Client | None:
        self.lookups += 1
        return self.rows.get(client_id)

    async def add(self, *, client: Client) -> None:
        self.rows[client.client_id] = client

    async def list(
        self, *, limit: int | None = None, after: str | None = None, search: str | None = None
    ) -> list[Client]:
        keys = [key for key in sorted(self.rows) if after is None or key > after]
        if search:
            wanted = search.lower()
            keys = [k for k in keys if wanted in k.lower() or wanted in self.rows[k].name.lower()]
        return [self.rows[key] for key in keys[:limit]]

    async def delete(self, *, client_id: str, revocation: ClientRevocation) -> bool:
        return self.rows.pop(client_id, None) is not None

    async def set_secret_hash(self, *, client_id: str, secret_hash: str, now: int) -> bool:
        row = self.rows.get(client_id)
        if row is None:
            return False
        self.rows[client_id] = replace(row, secret_hash=secret_hash, updated_at=now)
        return True

    async def update(self, *, client: Client) -> bool:
        row = self.rows.get(client.client_id)
        if row is None:
            return False
        self.rows[client.client_id] = replace(
            client, secret_hash=row.secret_hash, created_at=row.created_at
        )
        return True


class MemoryTokens:
    def __init__(self) -> None:
        self.rows: dict[bytes, AccessTokenRecord] = {}

    async def add(self, *, token: AccessTokenRecord) -> None:
        self.rows[token.selector] = token

    async def get(self, *, selector: bytes) -> AccessTokenRecord | None:
        return self.rows.get(selector)

    async def revoke(self, *, selector: bytes, now: int) -> bool:
        row = self.rows.get(selector)
        if row is None or row.revoked_at is not None:
            return False
        self.rows[selector] = replace(row, revoked_at=now)
        return True

    async def purge_expired(self, *, before: int, limit: int) -> int:
        expired = [key for key, row in self.rows.items() if row.expires_at < before][:limit]
        for key in expired:
            del self.rows[key]
        return len(expired)


def make_client(
    client_id: str = "app",
    secret: str = "s3cret",
    *,
    scopes: tuple[str, ...] = ("restaurent", "restaurants:read", "restaurants:write"),
    default_scopes: tuple[str, ...] = ("restaurent",),
    grant_types: frozenset[str] = frozenset({"client_credentials"}),
) -> Client:
    return Client(
        client_id=client_id,
        secret_hash=hash_secret(secret),
        grant_types=grant_types,
        scopes=frozenset(scopes),
        default_scopes=default_scopes,
    )


class MemoryAuditRepository:
    """The audit table as a dict; ``fail`` makes the next appends raise, before or after they
    took effect (``"before"``: the database was down; ``"after"``: the commit's answer was lost)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, int], AuditRecord] = {}
        self.appends = 0
        self.fail: list[str] = []

    async def append(self, *, records: Sequence[AuditRecord]) -> None:
        self.appends += 1
        failure = self.fail.pop(0) if self.fail else None
        if failure == "before":
            raise ConnectionError("database down")
        for record in records:
            self.rows.setdefault((record.chain_id, record.seq), record)
        if failure == "after":
            raise ConnectionError("connection lost during commit")

    async def scan(self, *, after: tuple[str, int] | None, limit: int) -> list[AuditRecord]:
        keys = sorted(k for k in self.rows if after is None or k > after)
        return [self.rows[k] for k in keys[:limit]]

    async def recent(self, *, limit: int) -> list[AuditRecord]:
        ordered = sorted(self.rows.values(), key=lambda r: (r.at_ms, r.chain_id, r.seq))
        return ordered[::-1][:limit]

    async def query(self, *, query: AuditQuery, limit: int) -> list[AuditRecord]:
        def matches(record: AuditRecord) -> bool:
            fields = orjson.loads(record.data)
            return (
                (not query.kinds or record.kind in query.kinds)
                and (query.client_id is None or fields.get("client_id") == query.client_id)
                and (query.user_id is None or fields.get("user_id") == query.user_id)
                and (query.since_ms is None or record.at_ms >= query.since_ms)
                and (query.until_ms is None or record.at_ms < query.until_ms)
                and (
                    query.before is None
                    or (record.at_ms, record.chain_id, record.seq) < query.before
                )
            )

        return [record for record in await self.recent(limit=len(self.rows)) if matches(record)][
            :limit
        ]


@dataclass
class MemoryAudit:
    """An ``AuditRecorder`` that keeps what it is told, for assertions."""

    events: list[tuple[AuditKind, AuditFields]] = field(default_factory=list)

    def record(self, kind: AuditKind, /, **fields: Unpack[AuditFields]) -> None:
        self.events.append((kind, fields))

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.events]
