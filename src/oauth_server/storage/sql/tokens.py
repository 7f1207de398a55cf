"""Opaque access tokens in SQL: selector and verifier hash, never the token."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_server.storage.models import TOKEN_CHANGE, AccessTokenRecord
from oauth_server.storage.sql.batching import AsyncBatchWriter, BatchWriter, GroupCommitter
from oauth_server.storage.sql.misc import announce
from oauth_server.storage.sql.purge import delete_batch
from oauth_server.storage.sql.schema import opaque_tokens

__all__ = ["SqlAccessTokenRepository"]


def _row(token: AccessTokenRecord) -> dict[str, Any]:
    return {
        "selector": token.selector,
        "verifier_hash": token.verifier_hash,
        "client_id": token.client_id,
        "subject": token.subject,
        "scope": token.scope,
        "audience": token.audience,
        "issued_at": token.issued_at,
        "expires_at": token.expires_at,
        "revoked_at": token.revoked_at,
    }


class SqlAccessTokenRepository:
    def __init__(self, engine: AsyncEngine, *, batch_writer: BatchWriter | None = None) -> None:
        self._engine = engine
        self.batch_writer = batch_writer or AsyncBatchWriter(engine, opaque_tokens)
        self._inserts = GroupCommitter(self.batch_writer)

    async def add(self, *, token: AccessTokenRecord) -> None:
        await self._inserts.insert(_row(token))

    async def get(self, *, selector: bytes) -> AccessTokenRecord | None:
        async with self._engine.connect() as conn:
            result = await conn.execute(
                select(opaque_tokens).where(opaque_tokens.c.selector == selector)
            )
            row = result.first()
        if row is None:
            return None
        return AccessTokenRecord(
            selector=bytes(row.selector),
            verifier_hash=bytes(row.verifier_hash),
            client_id=row.client_id,
            subject=row.subject,
            scope=row.scope,
            issued_at=row.issued_at,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
            audience=row.audience,
        )

    async def revoke(self, *, selector: bytes, now: int) -> bool:
        # Atomic in the database: of two concurrent revocations exactly one sees rowcount 1.
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(opaque_tokens)
                .where(opaque_tokens.c.selector == selector)
                .where(opaque_tokens.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            revoked = result.rowcount == 1
            if revoked:  # caches of validated tokens in every process drop it
                await announce(conn, kind=TOKEN_CHANGE, key=selector.hex(), now=now)
        return revoked

    async def purge_expired(self, *, before: int, limit: int) -> int:
        return await delete_batch(
            self._engine,
            opaque_tokens,
            opaque_tokens.c.selector,
            opaque_tokens.c.expires_at < before,
            limit=limit,
        )
