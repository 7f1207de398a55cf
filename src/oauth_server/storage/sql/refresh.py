"""Refresh-token families in SQL: rotation by compare-and-set, reuse revokes the family."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from oauth_server.storage.models import (
    FamilyRevocation,
    IssuedToken,
    RefreshFamily,
    RefreshRotation,
    RefreshTokenRecord,
    UserClientGrant,
)
from oauth_server.storage.sql.purge import delete_batch
from oauth_server.storage.sql.schema import issued_tokens, refresh_families, refresh_tokens
from oauth_server.storage.sql.transactions import (
    issued_from_rows,
    record_issued_tokens,
    void_access_tokens,
    write_transaction,
)

__all__ = ["SqlRefreshTokenRepository", "revoke_families"]


def _token(row: Any) -> RefreshTokenRecord:
    return RefreshTokenRecord(
        selector=bytes(row.selector),
        verifier_hash=bytes(row.verifier_hash),
        family_id=row.family_id,
        client_id=row.client_id,
        user_id=row.user_id,
        scope=row.scope,
        issued_at=row.issued_at,
        expires_at=row.expires_at,
        resource=row.resource,
        parent=None if row.parent is None else bytes(row.parent),
        rotated_at=row.rotated_at,
        revoked_at=row.revoked_at,
        auth_time=row.auth_time,
        session_id=row.session_id,
    )


def _family(row: Any) -> RefreshFamily:
    return RefreshFamily(
        family_id=row.family_id,
        client_id=row.client_id,
        user_id=row.user_id,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )


def _token_row(token: RefreshTokenRecord) -> dict[str, Any]:
    return {
        "selector": token.selector,
        "verifier_hash": token.verifier_hash,
        "family_id": token.family_id,
        "parent": token.parent,
        "client_id": token.client_id,
        "user_id": token.user_id,
        "scope": token.scope,
        "resource": token.resource,
        "issued_at": token.issued_at,
        "expires_at": token.expires_at,
        "rotated_at": token.rotated_at,
        "revoked_at": token.revoked_at,
        "auth_time": token.auth_time,
        "session_id": token.session_id,
    }


async def revoke_families(
    conn: AsyncConnection, family_ids: Sequence[str], *, now: int
) -> FamilyRevocation:
    """Revoke the families, every refresh token of them, and void the access tokens recorded
    against them (announced on the change feed), all in the caller's transaction."""
    if not family_ids:
        return FamilyRevocation()
    ids = list(family_ids)
    await conn.execute(
        update(refresh_families)
        .where(refresh_families.c.family_id.in_(ids))
        .where(refresh_families.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    revoked = await conn.execute(
        update(refresh_tokens)
        .where(refresh_tokens.c.family_id.in_(ids))
        .where(refresh_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    rows = (
        await conn.execute(select(issued_tokens).where(issued_tokens.c.family_id.in_(ids)))
    ).all()
    tokens = issued_from_rows(rows)
    await void_access_tokens(conn, tokens, now=now)
    return FamilyRevocation(tuple(ids), int(revoked.rowcount), tokens)


class SqlRefreshTokenRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create_family(self, *, family: RefreshFamily, token: RefreshTokenRecord) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(refresh_families).values(
                    family_id=family.family_id,
                    client_id=family.client_id,
                    user_id=family.user_id,
                    created_at=family.created_at,
                    expires_at=family.expires_at,
                    revoked_at=family.revoked_at,
                )
            )
            first = replace(
                token,
                family_id=family.family_id,
                parent=None,
                expires_at=min(token.expires_at, family.expires_at),
            )
            await conn.execute(insert(refresh_tokens).values(**_token_row(first)))

    async def get(self, *, selector: bytes) -> RefreshTokenRecord | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(refresh_tokens).where(refresh_tokens.c.selector == selector)
                )
            ).first()
        return None if row is None else _token(row)

    async def get_family(self, *, family_id: str) -> RefreshFamily | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(refresh_families).where(refresh_families.c.family_id == family_id)
                )
            ).first()
        return None if row is None else _family(row)

    async def rotate(
        self,
        *,
        selector: bytes,
        verifier_hash: bytes,
        successor: RefreshTokenRecord,
        access_tokens: Sequence[IssuedToken] = (),
        now: int,
        grace: int = 0,
    ) -> RefreshRotation | None:
        async with write_transaction(self._engine) as conn:
            row = (
                await conn.execute(
                    select(refresh_tokens)
                    .where(refresh_tokens.c.selector == selector)
                    .with_for_update()
                )
            ).first()
            if row is None or not hmac.compare_digest(bytes(row.verifier_hash), verifier_hash):
                return None
            family = _family(
                (
                    await conn.execute(
                        select(refresh_families).where(
                            refresh_families.c.family_id == row.family_id
                        )
                    )
                ).one()
            )
            token = _token(row)
            if token.revoked_at is not None or family.revoked_at is not None:
                return RefreshRotation("revoked", token, family)
            if family.expires_at <= now:
                return RefreshRotation("expired", token, family)
            child = replace(
                successor,
                family_id=family.family_id,
                client_id=token.client_id,
                user_id=token.user_id,
                parent=token.selector,
                expires_at=min(successor.expires_at, family.expires_at),
                rotated_at=None,
                revoked_at=None,
            )
            if token.rotated_at is None:
                if token.expires_at <= now:
                    return RefreshRotation("expired", token, family)
                # The compare-and-set: of concurrent rotations exactly one sees rowcount 1.
                won = await conn.execute(
                    update(refresh_tokens)
                    .where(refresh_tokens.c.selector == selector)
                    .where(refresh_tokens.c.rotated_at.is_(None))
                    .where(refresh_tokens.c.revoked_at.is_(None))
                    .values(rotated_at=now)
                )
                if won.rowcount == 1:
                    await conn.execute(insert(refresh_tokens).values(**_token_row(child)))
                    await record_issued_tokens(conn, access_tokens, family_id=family.family_id)
                    return RefreshRotation(
                        "rotated", replace(token, rotated_at=now), family, successor=child
                    )
                row = (
                    await conn.execute(
                        select(refresh_tokens).where(refresh_tokens.c.selector == selector)
                    )
                ).one()
                token = _token(row)
                if token.rotated_at is None:  # revoked in between
                    return RefreshRotation("revoked", token, family)
            return await self._reused(conn, row, token, family, child, access_tokens, now, grace)

    async def _reused(
        self,
        conn: AsyncConnection,
        row: Any,
        token: RefreshTokenRecord,
        family: RefreshFamily,
        child: RefreshTokenRecord,
        access_tokens: Sequence[IssuedToken],
        now: int,
        grace: int,
    ) -> RefreshRotation:
        children = (
            await conn.execute(
                select(refresh_tokens).where(refresh_tokens.c.parent == token.selector)
            )
        ).all()
        successor_used = any(c.rotated_at is not None for c in children)
        assert token.rotated_at is not None
        within_grace = grace > 0 and now - token.rotated_at <= grace
        if within_grace and not successor_used and not row.grace_used:
            # The one retry the grace allows (a client that lost the response): the unused
            # successor is revoked and a fresh one takes its place, in this transaction.
            claimed = await conn.execute(
                update(refresh_tokens)
                .where(refresh_tokens.c.selector == token.selector)
                .where(refresh_tokens.c.grace_used.is_(False))
                .values(grace_used=True)
            )
            if claimed.rowcount == 1:
                unused = [bytes(c.selector) for c in children if c.revoked_at is None]
                await conn.execute(
                    update(refresh_tokens)
                    .where(refresh_tokens.c.parent == token.selector)
                    .where(refresh_tokens.c.revoked_at.is_(None))
                    .values(revoked_at=now)
                )
                await conn.execute(insert(refresh_tokens).values(**_token_row(child)))
                await record_issued_tokens(conn, access_tokens, family_id=family.family_id)
                return RefreshRotation(
                    "rotated",
                    token,
                    family,
                    successor=child,
                    within_grace=True,
                    replaced=unused[0] if unused else None,
                )
        return RefreshRotation(
            "reused", token, family, within_grace=within_grace, successor_used=successor_used
        )

    async def revoke_family(self, *, family_id: str, now: int) -> FamilyRevocation:
        async with write_transaction(self._engine) as conn:
            return await revoke_families(conn, [family_id], now=now)

    async def revoke_for_user(self, *, user_id: str, now: int) -> FamilyRevocation:
        async with write_transaction(self._engine) as conn:
            ids = (
                await conn.execute(
                    select(refresh_families.c.family_id)
                    .where(refresh_families.c.user_id == user_id)
                    .where(refresh_families.c.revoked_at.is_(None))
                    .with_for_update()
                )
            ).scalars()
            return await revoke_families(conn, list(ids), now=now)

    async def revoke_for_user_client(
        self, *, user_id: str, client_id: str, now: int
    ) -> FamilyRevocation:
        async with write_transaction(self._engine) as conn:
            ids = (
                await conn.execute(
                    select(refresh_families.c.family_id)
                    .where(refresh_families.c.user_id == user_id)
                    .where(refresh_families.c.client_id == client_id)
                    .where(refresh_families.c.revoked_at.is_(None))
                    .order_by(refresh_families.c.family_id)
                    .with_for_update()
                )
            ).scalars()
            return await revoke_families(conn, list(ids), now=now)

    async def grants_for_user(self, *, user_id: str, now: int) -> list[UserClientGrant]:
        families = refresh_families.c
        live = (
            select(
                families.client_id,
                func.count().label("families"),
                func.min(families.created_at).label("first_created_at"),
            )
            .where(families.user_id == user_id)
            .where(families.revoked_at.is_(None))
            .where(families.expires_at > now)
            .group_by(families.client_id)
            .order_by(families.client_id)
        )
        last_used = (
            select(refresh_tokens.c.client_id, func.max(refresh_tokens.c.issued_at))
            .join(refresh_families, refresh_families.c.family_id == refresh_tokens.c.family_id)
            .where(families.user_id == user_id)
            .where(families.revoked_at.is_(None))
            .where(families.expires_at > now)
            .group_by(refresh_tokens.c.client_id)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(live)).all()
            used = {row[0]: row[1] for row in (await conn.execute(last_used)).all()}
        return [
            UserClientGrant(
                client_id=row.client_id,
                families=int(row.families),
                first_created_at=int(row.first_created_at),
                last_used_at=int(used.get(row.client_id) or row.first_created_at),
            )
            for row in rows
        ]

    async def revoke_for_session(
        self, *, session_id: str, now: int, keep_scope: str | None = None
    ) -> FamilyRevocation:
        if not session_id:
            return FamilyRevocation()
        async with write_transaction(self._engine) as conn:
            rows = (
                await conn.execute(
                    select(refresh_tokens.c.family_id, refresh_tokens.c.scope)
                    .join(
                        refresh_families,
                        refresh_families.c.family_id == refresh_tokens.c.family_id,
                    )
                    .where(refresh_tokens.c.session_id == session_id)
                    .where(refresh_tokens.c.rotated_at.is_(None))
                    .where(refresh_tokens.c.revoked_at.is_(None))
                    .where(refresh_families.c.revoked_at.is_(None))
                    .with_for_update()
                )
            ).all()
            ids = sorted(
                {
                    row.family_id
                    for row in rows
                    if keep_scope is None or keep_scope not in row.scope.split()
                }
            )
            return await revoke_families(conn, ids, now=now)

    async def purge_expired(self, *, before: int, limit: int) -> int:
        return await delete_batch(
            self._engine,
            refresh_tokens,
            refresh_tokens.c.selector,
            refresh_tokens.c.expires_at < before,
            limit=limit,
        )

    async def purge_expired_families(self, *, before: int, limit: int) -> int:
        return await delete_batch(
            self._engine,
            refresh_families,
            refresh_families.c.family_id,
            refresh_families.c.expires_at < before,
            limit=limit,
        )

    async def purge_expired_issued(self, *, before: int, limit: int) -> int:
        return await delete_batch(
            self._engine,
            issued_tokens,
            issued_tokens.c.token_id,
            issued_tokens.c.expires_at < before,
            limit=limit,
        )
