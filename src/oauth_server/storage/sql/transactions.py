"""Read-then-write transactions, and voiding the access tokens a code or a family issued."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from oauth_server.storage.models import JTI_CHANGE, TOKEN_CHANGE, IssuedToken
from oauth_server.storage.sql.engine import BEGIN_IMMEDIATE
from oauth_server.storage.sql.misc import announce
from oauth_server.storage.sql.schema import issued_tokens, opaque_tokens, revoked_tokens

__all__ = ["issued_from_rows", "record_issued_tokens", "void_access_tokens", "write_transaction"]


@asynccontextmanager
async def write_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A transaction that reads, then writes what it read. SQLite: it takes the write lock up
    front (``BEGIN IMMEDIATE``), so concurrent callers queue on the busy timeout instead of
    failing at the upgrade from a read lock; PostgreSQL: the reads lock their rows
    (``FOR UPDATE``, written by the caller), so the second caller reads the first's result."""
    async with engine.connect() as conn:
        conn.info[BEGIN_IMMEDIATE] = True
        async with conn.begin():
            yield conn


def issued_from_rows(rows: Sequence[object]) -> tuple[IssuedToken, ...]:
    return tuple(
        IssuedToken(
            token_id=row.token_id,  # type: ignore[attr-defined]
            token_format=row.token_format,  # type: ignore[attr-defined]
            client_id=row.client_id,  # type: ignore[attr-defined]
            expires_at=row.expires_at,  # type: ignore[attr-defined]
        )
        for row in rows
    )


async def record_issued_tokens(
    conn: AsyncConnection,
    tokens: Sequence[IssuedToken],
    *,
    code_selector: bytes | None = None,
    family_id: str | None = None,
) -> None:
    if tokens:
        await conn.execute(
            insert(issued_tokens),
            [
                {
                    "token_id": token.token_id,
                    "token_format": token.token_format,
                    "client_id": token.client_id,
                    "expires_at": token.expires_at,
                    "code_selector": code_selector,
                    "family_id": family_id,
                }
                for token in tokens
            ],
        )


async def void_access_tokens(
    conn: AsyncConnection, tokens: Sequence[IssuedToken], *, now: int
) -> None:
    """Revoke each token in the caller's transaction, the way single revocations do: a JWT's
    ``jti`` goes to the revocation list and an opaque token is marked revoked, each announced
    on the change feed (:data:`JTI_CHANGE` / :data:`TOKEN_CHANGE`) in this same transaction,
    so every process drops it from its caches within the sync interval. Idempotent."""
    jwts = [token for token in tokens if token.token_format == "jwt"]
    if jwts:
        known = set(
            (
                await conn.execute(
                    select(revoked_tokens.c.jti).where(
                        revoked_tokens.c.jti.in_([token.token_id for token in jwts])
                    )
                )
            ).scalars()
        )
        for token in jwts:
            if token.token_id in known:
                continue
            try:
                async with conn.begin_nested():
                    await conn.execute(
                        insert(revoked_tokens).values(
                            jti=token.token_id,
                            client_id=token.client_id,
                            expires_at=token.expires_at,
                            revoked_at=now,
                        )
                    )
            except IntegrityError:  # revoked concurrently by another path: already void
                continue
            await announce(conn, kind=JTI_CHANGE, key=token.token_id, now=now)
    for token in tokens:
        if token.token_format != "opaque":
            continue
        try:
            selector = bytes.fromhex(token.token_id)
        except ValueError:
            continue
        result = await conn.execute(
            update(opaque_tokens)
            .where(opaque_tokens.c.selector == selector)
            .where(opaque_tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        if result.rowcount == 1:
            await announce(conn, kind=TOKEN_CHANGE, key=token.token_id, now=now)
