"""In-memory stand-ins for repositories, for unit tests of the core (not a storage backend)."""

from __future__ import annotations

from dataclasses import replace

from oauth_server.crypto import hash_secret
from oauth_server.storage.models import AccessTokenRecord, Client


class MemoryClients:
    def __init__(self, *clients: Client) -> None:
        self.rows = {client.client_id: client for client in clients}
        self.lookups = 0

    async def get(self, *, client_id: str) -> Client | None:
        self.lookups += 1
        return self.rows.get(client_id)


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
