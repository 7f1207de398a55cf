"""Dynamic client registration in SQL: initial access tokens and client registrations."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_server.storage.models import Client, ClientRegistration, InitialAccessToken
from oauth_server.storage.protocols import AlreadyExists
from oauth_server.storage.sql.clients import client_to_row, update_values
from oauth_server.storage.sql.schema import client_registrations, clients, initial_access_tokens

__all__ = ["SqlRegistrationRepository"]

_tokens = initial_access_tokens
_registrations = client_registrations


def _row_to_token(row: Any) -> InitialAccessToken:
    return InitialAccessToken(
        selector=bytes(row.selector),
        verifier_hash=bytes(row.verifier_hash),
        description=row.description,
        max_clients=row.max_clients,
        clients_registered=row.clients_registered,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )


def _row_to_registration(row: Any) -> ClientRegistration:
    return ClientRegistration(
        client_id=row.client_id,
        token_selector=bytes(row.token_selector),
        token_hash=bytes(row.token_hash),
        initial_token=None if row.initial_token is None else bytes(row.initial_token),
        metadata=row.metadata,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class _ClientIdTaken(Exception):
    pass


class _NoClient(Exception):
    pass


class SqlRegistrationRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add_initial_token(self, *, token: InitialAccessToken) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(_tokens).values(
                    selector=token.selector,
                    verifier_hash=token.verifier_hash,
                    description=token.description,
                    max_clients=token.max_clients,
                    clients_registered=token.clients_registered,
                    created_at=token.created_at,
                    expires_at=token.expires_at,
                    revoked_at=token.revoked_at,
                )
            )

    async def get_initial_token(self, *, selector: bytes) -> InitialAccessToken | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(_tokens).where(_tokens.c.selector == selector))
            ).first()
        return _row_to_token(row) if row else None

    async def list_initial_tokens(self) -> list[InitialAccessToken]:
        async with self._engine.connect() as conn:
            result = await conn.execute(
                select(_tokens).order_by(_tokens.c.created_at.desc(), _tokens.c.selector.desc())
            )
            return [_row_to_token(row) for row in result]

    async def revoke_initial_token(self, *, selector: bytes, now: int) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(_tokens)
                .where(_tokens.c.selector == selector, _tokens.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
        return result.rowcount == 1

    async def register(self, *, client: Client, registration: ClientRegistration, now: int) -> bool:
        try:
            async with self._engine.begin() as conn:
                if registration.initial_token is not None:
                    # The cap holds across processes: the row count of this conditional
                    # UPDATE decides, and a losing transaction stores nothing.
                    counted = await conn.execute(
                        update(_tokens)
                        .where(
                            _tokens.c.selector == registration.initial_token,
                            _tokens.c.revoked_at.is_(None),
                            _tokens.c.expires_at > now,
                            _tokens.c.clients_registered < _tokens.c.max_clients,
                        )
                        .values(clients_registered=_tokens.c.clients_registered + 1)
                    )
                    if counted.rowcount != 1:
                        return False
                try:
                    await conn.execute(insert(clients).values(**client_to_row(client)))
                    await conn.execute(
                        insert(_registrations).values(
                            client_id=registration.client_id,
                            token_selector=registration.token_selector,
                            token_hash=registration.token_hash,
                            initial_token=registration.initial_token,
                            metadata=registration.metadata,
                            created_at=registration.created_at,
                            updated_at=registration.updated_at,
                        )
                    )
                except IntegrityError:
                    raise _ClientIdTaken from None  # rolls the counted use back too
        except _ClientIdTaken:
            raise AlreadyExists(client.client_id) from None
        return True

    async def get(self, *, client_id: str) -> ClientRegistration | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(_registrations).where(_registrations.c.client_id == client_id)
                )
            ).first()
        return _row_to_registration(row) if row else None

    async def update(self, *, client: Client, metadata: str, now: int) -> bool:
        try:
            async with self._engine.begin() as conn:
                changed = await conn.execute(
                    update(_registrations)
                    .where(_registrations.c.client_id == client.client_id)
                    .values(metadata=metadata, updated_at=now)
                )
                if changed.rowcount != 1:
                    return False
                result = await conn.execute(
                    update(clients)
                    .where(clients.c.client_id == client.client_id)
                    .values(**update_values(client))
                )
                if result.rowcount != 1:
                    # A registration outliving its client cannot happen (they are deleted
                    # together); should it, change nothing.
                    raise _NoClient
        except _NoClient:
            return False
        return True
