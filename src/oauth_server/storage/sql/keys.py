"""Signing keys, revoked JWT ids and client-wide revocations in SQL."""

from __future__ import annotations

from sqlalchemy import delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from oauth_server.storage.models import (
    CLIENT_REVOCATION_CHANGE,
    JTI_CHANGE,
    ClientRevocation,
    RevokedToken,
    SigningKeyRecord,
)
from oauth_server.storage.sql.misc import announce
from oauth_server.storage.sql.purge import delete_batch
from oauth_server.storage.sql.schema import client_revocations, revoked_tokens, signing_keys

__all__ = ["SqlRevocationRepository", "SqlSigningKeyRepository", "record_client_revocation"]


async def record_client_revocation(conn: AsyncConnection, revocation: ClientRevocation) -> None:
    """Upsert the client's cutoff inside the caller's transaction (a later stored cutoff wins)
    and announce it on the change feed with it."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    values = {
        "client_id": revocation.client_id,
        "revoked_at": revocation.revoked_at,
        "expires_at": revocation.expires_at,
    }
    statement = dialect.insert(client_revocations).values(**values)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[client_revocations.c.client_id],
            set_={
                "revoked_at": statement.excluded.revoked_at,
                "expires_at": statement.excluded.expires_at,
            },
            where=client_revocations.c.revoked_at < statement.excluded.revoked_at,
        )
    )
    await announce(
        conn,
        kind=CLIENT_REVOCATION_CHANGE,
        key=f"{revocation.revoked_at} {revocation.client_id}",
        now=revocation.revoked_at,
    )


class SqlSigningKeyRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def list(self) -> list[SigningKeyRecord]:
        async with self._engine.connect() as conn:
            result = await conn.execute(select(signing_keys).order_by(signing_keys.c.generation))
            return [
                SigningKeyRecord(
                    kid=row.kid,
                    generation=row.generation,
                    alg=row.alg,
                    public_jwk=row.public_jwk,
                    private_key=bytes(row.private_key),
                    created_at=row.created_at,
                    activates_at=row.activates_at,
                    removed_at=row.removed_at,
                )
                for row in result
            ]

    async def add(self, *, key: SigningKeyRecord) -> bool:
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    insert(signing_keys).values(
                        kid=key.kid,
                        generation=key.generation,
                        alg=key.alg,
                        public_jwk=key.public_jwk,
                        private_key=key.private_key,
                        created_at=key.created_at,
                        activates_at=key.activates_at,
                        removed_at=key.removed_at,
                    )
                )
        except IntegrityError:
            return False
        return True

    async def remove(self, *, kid: str, now: int) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(signing_keys)
                .where(signing_keys.c.kid == kid)
                .where(signing_keys.c.removed_at.is_(None))
                .values(removed_at=now, private_key=b"")
            )
        return result.rowcount == 1

    async def replace_private_key(self, *, kid: str, old: bytes, new: bytes) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(signing_keys)
                .where(signing_keys.c.kid == kid)
                .where(signing_keys.c.private_key == old)
                .values(private_key=new)
            )
        return result.rowcount == 1

    async def delete(self, *, kid: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(signing_keys).where(signing_keys.c.kid == kid))
        return result.rowcount == 1


class SqlRevocationRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, *, token: RevokedToken) -> bool:
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    insert(revoked_tokens).values(
                        jti=token.jti,
                        client_id=token.client_id,
                        expires_at=token.expires_at,
                        revoked_at=token.revoked_at,
                    )
                )
                # Same transaction: no revocation is recorded without every process hearing.
                await announce(conn, kind=JTI_CHANGE, key=token.jti, now=token.revoked_at)
        except IntegrityError:
            return False
        return True

    async def active(self, *, now: int) -> list[RevokedToken]:
        async with self._engine.connect() as conn:
            result = await conn.execute(
                select(revoked_tokens).where(revoked_tokens.c.expires_at > now)
            )
            return [
                RevokedToken(
                    jti=row.jti,
                    client_id=row.client_id,
                    expires_at=row.expires_at,
                    revoked_at=row.revoked_at,
                )
                for row in result
            ]

    async def purge_expired(self, *, before: int, limit: int) -> int:
        return await delete_batch(
            self._engine,
            revoked_tokens,
            revoked_tokens.c.jti,
            revoked_tokens.c.expires_at < before,
            limit=limit,
        )

    async def revoke_client(self, *, revocation: ClientRevocation) -> None:
        async with self._engine.begin() as conn:
            await record_client_revocation(conn, revocation)

    async def active_clients(self, *, now: int) -> list[ClientRevocation]:
        async with self._engine.connect() as conn:
            result = await conn.execute(
                select(client_revocations).where(client_revocations.c.expires_at > now)
            )
            return [
                ClientRevocation(
                    client_id=row.client_id, revoked_at=row.revoked_at, expires_at=row.expires_at
                )
                for row in result
            ]

    async def purge_expired_clients(self, *, before: int, limit: int) -> int:
        return await delete_batch(
            self._engine,
            client_revocations,
            client_revocations.c.client_id,
            client_revocations.c.expires_at < before,
            limit=limit,
        )
