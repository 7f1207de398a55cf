"""Opaque access tokens in SQL, stored only as SHA-256 hashes."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_server.storage.models import TOKEN_CHANGE, AccessTokenRecord
from oauth_server.storage.sql.batching import GroupCommitter
from oauth_server.storage.sql.misc import announce
from oauth_server.storage.sql.schema import access_tokens

__all__ = ["SqlAccessTokenRepository"]


class SqlAccessTokenRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._inserts = GroupCommitter(engine, access_tokens)

    async def add(self, *, token: AccessTokenRecord) -> None:
        await self._inserts.insert(
            {
                "token_hash": token.token_hash,
                "client_id": token.client_id,
                "subject": token.subject,
                "scope": token.scope,
                "issued_at": token.issued_at,
                "expires_at": token.expires_at,
                "revoked_at": token.revoked_at,
                "audience": token.audience,
            }
        )

    async def get(self, *, token_hash: bytes) -> AccessTokenRecord | None:
        async with self._engine.connect() as conn:
            result = await conn.execute(
                select(access_tokens).where(access_tokens.c.token_hash == token_hash)
            )
            row = result.first()
        if row is None:
            return None
        return AccessTokenRecord(
            token_hash=row.token_hash,
            client_id=row.client_id,
            subject=row.subject,
            scope=row.scope,
            issued_at=row.issued_at,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
            audience=row.audience,
        )

    async def revoke(self, *, token_hash: bytes, now: int) -> bool:
        # Atomic in the database: of two concurrent revocations exactly one sees rowcount 1.
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(access_tokens)
                .where(access_tokens.c.token_hash == token_hash)
                .where(access_tokens.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            revoked = result.rowcount == 1
            if revoked:  # caches of validated tokens in every process drop it
                await announce(conn, kind=TOKEN_CHANGE, key=token_hash.hex(), now=now)
        return revoked
