"""The registration repository (dynamic client registration), on SQLite and PostgreSQL:
initial access tokens (stored as hashes, revoked once), a registration stored with its client
in one transaction that counts the initial token's use, the per-token cap under concurrent
registrations, updates of both rows together, and deletion of the client taking its
registration with it."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from oauth_server.crypto import new_split_token
from oauth_server.storage import (
    AlreadyExists,
    Client,
    ClientRegistration,
    ClientRevocation,
    InitialAccessToken,
    SqlStorage,
)

NOW = 1_800_000_000
RACERS = 20


def initial(max_clients: int = 3, *, expires_at: int = NOW + 3600) -> InitialAccessToken:
    split = new_split_token(NOW)
    return InitialAccessToken(
        selector=split.selector,
        verifier_hash=split.verifier_hash,
        max_clients=max_clients,
        created_at=NOW,
        expires_at=expires_at,
        description="for the mobile team",
    )


def client(client_id: str) -> Client:
    return Client(
        client_id=client_id,
        secret_hash=None,
        name="App",
        grant_types=frozenset({"authorization_code"}),
        scopes=frozenset({"openid"}),
        default_scopes=("openid",),
        created_at=NOW,
        updated_at=NOW,
        client_type="public",
        auth_methods=frozenset({"none"}),
        redirect_uris=("https://app.example/cb",),
    )


def registration(client_id: str, token: InitialAccessToken | None) -> ClientRegistration:
    split = new_split_token(NOW)
    return ClientRegistration(
        client_id=client_id,
        token_selector=split.selector,
        token_hash=split.verifier_hash,
        initial_token=None if token is None else token.selector,
        metadata='{"client_uri":"https://app.example/"}',
        created_at=NOW,
        updated_at=NOW,
    )


async def test_initial_tokens_round_trip_list_and_revoke(storage: SqlStorage) -> None:
    first, second = initial(), replace(initial(5), created_at=NOW + 1)
    await storage.registrations.add_initial_token(token=first)
    await storage.registrations.add_initial_token(token=second)
    assert await storage.registrations.get_initial_token(selector=first.selector) == first
    assert await storage.registrations.get_initial_token(selector=b"\0" * 12) is None
    assert await storage.registrations.list_initial_tokens() == [second, first]
    assert await storage.registrations.revoke_initial_token(selector=first.selector, now=NOW + 5)
    # Once: a second revocation changes nothing and says so.
    assert not await storage.registrations.revoke_initial_token(selector=first.selector, now=NOW)
    stored = await storage.registrations.get_initial_token(selector=first.selector)
    assert stored is not None
    assert stored.revoked_at == NOW + 5


async def test_register_stores_both_rows_and_counts_the_use(storage: SqlStorage) -> None:
    token = initial(2)
    await storage.registrations.add_initial_token(token=token)
    record = registration("c1", token)
    assert await storage.registrations.register(client=client("c1"), registration=record, now=NOW)
    assert await storage.clients.get(client_id="c1") == client("c1")
    assert await storage.registrations.get(client_id="c1") == record
    counted = await storage.registrations.get_initial_token(selector=token.selector)
    assert counted is not None
    assert counted.clients_registered == 1
    # Open registration: no token, nothing counted.
    assert await storage.registrations.register(
        client=client("c2"), registration=registration("c2", None), now=NOW
    )
    assert await storage.registrations.get(client_id="nobody") is None


@pytest.mark.parametrize("state", ["revoked", "expired", "used up", "unknown"])
async def test_a_dead_initial_token_registers_nothing(storage: SqlStorage, state: str) -> None:
    token = initial(1, expires_at=NOW if state == "expired" else NOW + 60)
    if state != "unknown":
        await storage.registrations.add_initial_token(token=token)
    if state == "revoked":
        await storage.registrations.revoke_initial_token(selector=token.selector, now=NOW)
    if state == "used up":
        assert await storage.registrations.register(
            client=client("first"), registration=registration("first", token), now=NOW
        )
    assert not await storage.registrations.register(
        client=client("c"), registration=registration("c", token), now=NOW
    )
    assert await storage.clients.get(client_id="c") is None
    assert await storage.registrations.get(client_id="c") is None


async def test_a_taken_client_id_stores_nothing_and_counts_nothing(storage: SqlStorage) -> None:
    token = initial(3)
    await storage.registrations.add_initial_token(token=token)
    await storage.clients.add(client=client("taken"))
    with pytest.raises(AlreadyExists):
        await storage.registrations.register(
            client=client("taken"), registration=registration("taken", token), now=NOW
        )
    assert await storage.registrations.get(client_id="taken") is None
    counted = await storage.registrations.get_initial_token(selector=token.selector)
    assert counted is not None
    assert counted.clients_registered == 0


async def test_concurrent_registrations_never_overrun_the_token(storage: SqlStorage) -> None:
    token = initial(5)
    await storage.registrations.add_initial_token(token=token)
    results = await asyncio.gather(
        *(
            storage.registrations.register(
                client=client(f"c{i}"), registration=registration(f"c{i}", token), now=NOW
            )
            for i in range(RACERS)
        )
    )
    assert results.count(True) == 5
    assert len(await storage.clients.list()) == 5
    counted = await storage.registrations.get_initial_token(selector=token.selector)
    assert counted is not None
    assert counted.clients_registered == 5


async def test_update_replaces_client_and_registration_metadata(storage: SqlStorage) -> None:
    record = registration("c", None)
    await storage.registrations.register(client=client("c"), registration=record, now=NOW)
    renamed = replace(client("c"), name="Renamed", redirect_uris=("https://new.example/cb",))
    assert await storage.registrations.update(client=renamed, metadata="{}", now=NOW + 9)
    assert await storage.clients.get(client_id="c") == renamed
    assert await storage.registrations.get(client_id="c") == replace(
        record, metadata="{}", updated_at=NOW + 9
    )
    # A client without a registration (made with the CLI) is not changed through it.
    await storage.clients.add(client=client("cli"))
    assert not await storage.registrations.update(
        client=replace(client("cli"), name="x"), metadata="{}", now=NOW
    )
    assert await storage.clients.get(client_id="cli") == client("cli")


async def test_deleting_the_client_deletes_its_registration(storage: SqlStorage) -> None:
    await storage.registrations.register(
        client=client("c"), registration=registration("c", None), now=NOW
    )
    revocation = ClientRevocation(client_id="c", revoked_at=NOW, expires_at=NOW + 60)
    assert await storage.clients.delete(client_id="c", revocation=revocation)
    assert await storage.registrations.get(client_id="c") is None
    # The id can be registered afresh (nothing of the old registration is left).
    assert await storage.registrations.register(
        client=client("c"), registration=registration("c", None), now=NOW
    )
