"""Clients in SQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from oauth_server.storage.models import Client, ClientRevocation
from oauth_server.storage.protocols import AlreadyExists
from oauth_server.storage.sql.keys import record_client_revocation
from oauth_server.storage.sql.schema import client_registrations, clients
from oauth_server.storage.sql.search import contains_any

__all__ = ["SqlClientRepository", "client_to_row", "update_values"]


def _row_to_client(row: Any) -> Client:
    return Client(
        client_id=row.client_id,
        secret_hash=row.secret_hash,
        name=row.name,
        grant_types=frozenset(row.grant_types.split()),
        scopes=frozenset(row.scopes.split()),
        default_scopes=tuple(row.default_scopes.split()),
        token_format=row.token_format,
        resources=tuple(row.resources.split()),
        created_at=row.created_at,
        updated_at=row.updated_at,
        introspect=tuple(row.introspect.split()),
        client_type=row.client_type,
        auth_methods=frozenset(row.auth_methods.split()),
        redirect_uris=tuple(row.redirect_uris.split()),
        post_logout_redirect_uris=tuple(row.post_logout_redirect_uris.split()),
        require_consent=bool(row.require_consent),
        require_pkce=bool(row.require_pkce),
    )


def client_to_row(client: Client) -> dict[str, Any]:
    return {
        "client_id": client.client_id,
        "secret_hash": client.secret_hash,
        "name": client.name,
        "grant_types": " ".join(sorted(client.grant_types)),
        "scopes": " ".join(sorted(client.scopes)),
        "default_scopes": " ".join(client.default_scopes),
        "token_format": client.token_format,
        "resources": " ".join(client.resources),
        "created_at": client.created_at,
        "updated_at": client.updated_at,
        "introspect": " ".join(client.introspect),
        "client_type": client.client_type,
        "auth_methods": " ".join(sorted(client.auth_methods)),
        "redirect_uris": " ".join(client.redirect_uris),
        "post_logout_redirect_uris": " ".join(client.post_logout_redirect_uris),
        "require_consent": client.require_consent,
        "require_pkce": client.require_pkce,
    }


def update_values(client: Client) -> dict[str, Any]:
    """The columns an update replaces: every one but the id, the secret and ``created_at``."""
    values = client_to_row(client)
    for fixed in ("client_id", "secret_hash", "created_at"):
        del values[fixed]
    return values


class SqlClientRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, *, client_id: str) -> Client | None:
        async with self._engine.connect() as conn:
            result = await conn.execute(select(clients).where(clients.c.client_id == client_id))
            row = result.first()
        return _row_to_client(row) if row else None

    async def add(self, *, client: Client) -> None:
        try:
            async with self._engine.begin() as conn:
                await conn.execute(insert(clients).values(**client_to_row(client)))
        except IntegrityError:
            raise AlreadyExists(client.client_id) from None

    async def list(
        self, *, limit: int | None = None, after: str | None = None, search: str | None = None
    ) -> list[Client]:
        query = select(clients).order_by(clients.c.client_id)
        if after is not None:
            query = query.where(clients.c.client_id > after)
        if search:
            query = query.where(contains_any(search, clients.c.client_id, clients.c.name))
        if limit is not None:
            query = query.limit(limit)
        async with self._engine.connect() as conn:
            result = await conn.execute(query)
            return [_row_to_client(row) for row in result]

    async def delete(self, *, client_id: str, revocation: ClientRevocation) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(clients).where(clients.c.client_id == client_id))
            deleted = result.rowcount == 1
            if deleted:  # one transaction: no deleted client leaves valid tokens behind
                await record_client_revocation(conn, revocation)
                # ...nor a registration access token (RFC 7592) that names it.
                await conn.execute(
                    delete(client_registrations).where(
                        client_registrations.c.client_id == client_id
                    )
                )
        return deleted

    async def update(self, *, client: Client) -> bool:
        """Replace every stored field but the id, the secret and ``created_at``."""
        values = update_values(client)
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(clients).where(clients.c.client_id == client.client_id).values(**values)
            )
        return result.rowcount == 1

    async def set_secret_hash(self, *, client_id: str, secret_hash: str, now: int) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(clients)
                .where(clients.c.client_id == client_id)
                .values(secret_hash=secret_hash, updated_at=now)
            )
        return result.rowcount == 1
