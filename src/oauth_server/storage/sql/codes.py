"""Authorization codes in SQL: selector and verifier hash, single use by a conditional update."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_server.storage.models import AuthorizationCode, CodeRedemption, IssuedToken
from oauth_server.storage.sql.purge import delete_batch
from oauth_server.storage.sql.refresh import revoke_families
from oauth_server.storage.sql.schema import authorization_codes as table
from oauth_server.storage.sql.schema import issued_tokens
from oauth_server.storage.sql.transactions import (
    issued_from_rows,
    record_issued_tokens,
    void_access_tokens,
    write_transaction,
)

__all__ = ["SqlAuthorizationCodeRepository"]


def _code(row: Any) -> AuthorizationCode:
    return AuthorizationCode(
        selector=bytes(row.selector),
        verifier_hash=bytes(row.verifier_hash),
        client_id=row.client_id,
        redirect_uri=row.redirect_uri,
        user_id=row.user_id,
        scope=row.scope,
        issued_at=row.issued_at,
        expires_at=row.expires_at,
        code_challenge=row.code_challenge,
        code_challenge_method=row.code_challenge_method,
        resource=row.resource,
        nonce=row.nonce,
        session_id=row.session_id,
        auth_time=row.auth_time,
        used_at=row.used_at,
        replayed_at=row.replayed_at,
        refresh_family_id=row.refresh_family_id,
    )


class SqlAuthorizationCodeRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, *, code: AuthorizationCode) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(table).values(
                    selector=code.selector,
                    verifier_hash=code.verifier_hash,
                    client_id=code.client_id,
                    redirect_uri=code.redirect_uri,
                    user_id=code.user_id,
                    scope=code.scope,
                    code_challenge=code.code_challenge,
                    code_challenge_method=code.code_challenge_method,
                    resource=code.resource,
                    nonce=code.nonce,
                    session_id=code.session_id,
                    auth_time=code.auth_time,
                    issued_at=code.issued_at,
                    expires_at=code.expires_at,
                    used_at=code.used_at,
                    replayed_at=code.replayed_at,
                    refresh_family_id=code.refresh_family_id,
                )
            )

    async def consume(
        self, *, selector: bytes, verifier_hash: bytes, now: int
    ) -> CodeRedemption | None:
        async with write_transaction(self._engine) as conn:
            row = (
                await conn.execute(
                    select(table).where(table.c.selector == selector).with_for_update()
                )
            ).first()
            if row is None or not hmac.compare_digest(bytes(row.verifier_hash), verifier_hash):
                return None
            # The single-use decision is this conditional update and its row count: it holds
            # across processes and machines, not just inside one event loop.
            won = await conn.execute(
                update(table)
                .where(table.c.selector == selector)
                .where(table.c.used_at.is_(None))
                .where(table.c.expires_at > now)
                .values(used_at=now)
            )
            if won.rowcount == 1:
                return CodeRedemption("consumed", replace(_code(row), used_at=now))
            if row.used_at is None:  # unused but expired: nothing was issued from it
                return None
            await conn.execute(
                update(table)
                .where(table.c.selector == selector)
                .where(table.c.replayed_at.is_(None))
                .values(replayed_at=now)
            )
            issued = (
                await conn.execute(
                    select(issued_tokens).where(issued_tokens.c.code_selector == selector)
                )
            ).all()
            code = replace(_code(row), replayed_at=row.replayed_at or now)
            return CodeRedemption("replayed", code, issued_from_rows(issued))

    async def record_issued(
        self,
        *,
        selector: bytes,
        tokens: Sequence[IssuedToken],
        refresh_family_id: str | None,
        now: int,
    ) -> bool:
        async with write_transaction(self._engine) as conn:
            await record_issued_tokens(
                conn, tokens, code_selector=selector, family_id=refresh_family_id
            )
            family = table.c.refresh_family_id if refresh_family_id is None else refresh_family_id
            # The code's row lock orders this against a concurrent replay: either the replay
            # sees what is recorded here, or this sees the replay and says so.
            row = (
                await conn.execute(
                    update(table)
                    .where(table.c.selector == selector)
                    .values(refresh_family_id=family)
                    .returning(table.c.replayed_at)
                )
            ).first()
        return row is not None and row.replayed_at is None

    async def revoke_issued(self, *, selector: bytes, now: int) -> tuple[IssuedToken, ...]:
        async with write_transaction(self._engine) as conn:
            family_id = (
                await conn.execute(
                    select(table.c.refresh_family_id).where(table.c.selector == selector)
                )
            ).scalar_one_or_none()
            condition = issued_tokens.c.code_selector == selector
            if family_id is not None:
                condition = or_(condition, issued_tokens.c.family_id == family_id)
            tokens = issued_from_rows(
                (await conn.execute(select(issued_tokens).where(condition))).all()
            )
            await void_access_tokens(conn, tokens, now=now)
            if family_id is not None:
                await revoke_families(conn, [family_id], now=now)
        return tokens

    async def purge_expired(self, *, before: int, limit: int) -> int:
        return await delete_batch(
            self._engine, table, table.c.selector, table.c.expires_at < before, limit=limit
        )
