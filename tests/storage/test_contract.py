"""One contract for every storage backend (SQLite and PostgreSQL through ``database_url``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import inspect

from oauth_server.crypto import hash_secret, new_split_token
from oauth_server.storage import (
    AccessTokenRecord,
    AlreadyExists,
    Client,
    Restaurant,
    RestaurantChanges,
    SqlStorage,
    open_storage,
)
from oauth_server.storage.migrate import current_revision, head_revision
from oauth_server.storage.sql.schema import metadata


@pytest.fixture
async def storage(database_url: str) -> AsyncIterator[SqlStorage]:
    opened = open_storage(database_url, pool_size=5)
    await opened.migrate()
    try:
        yield opened
    finally:
        await opened.close()


def client(client_id: str = "c1") -> Client:
    return Client(
        client_id=client_id,
        secret_hash=hash_secret("s"),
        name="C",
        grant_types=frozenset({"client_credentials"}),
        scopes=frozenset({"a", "b"}),
        default_scopes=("b", "a"),
        token_format="opaque",
        created_at=1,
        updated_at=2,
    )


def restaurant(restaurant_id: str, name: str = "R") -> Restaurant:
    return Restaurant(restaurant_id, name, "Addr", "09:00", "17:00", 1, 1)


async def test_migrations_reach_head_and_match_the_schema_module(storage: SqlStorage) -> None:
    assert await current_revision(storage.engine) == head_revision()
    await storage.migrate()  # idempotent

    def columns(sync_conn):  # type: ignore[no-untyped-def]
        inspector = inspect(sync_conn)
        return {
            table: {column["name"] for column in inspector.get_columns(table)}
            for table in inspector.get_table_names()
            if table != "alembic_version"
        }

    async with storage.engine.connect() as conn:
        actual = await conn.run_sync(columns)
    expected = {table.name: {c.name for c in table.columns} for table in metadata.tables.values()}
    assert actual == expected


async def test_concurrent_migrations_are_safe(database_url: str) -> None:
    stores = [open_storage(database_url, pool_size=2) for _ in range(3)]
    try:
        await asyncio.gather(*(store.migrate() for store in stores))
        assert await current_revision(stores[0].engine) == head_revision()
    finally:
        for store in stores:
            await store.close()


async def test_clients_round_trip(storage: SqlStorage) -> None:
    await storage.clients.add(client=client())
    assert await storage.clients.get(client_id="c1") == client()
    assert await storage.clients.get(client_id="nope") is None
    with pytest.raises(AlreadyExists):
        await storage.clients.add(client=client())
    await storage.clients.add(client=client("c0"))
    assert [c.client_id for c in await storage.clients.list()] == ["c0", "c1"]
    assert await storage.clients.set_secret_hash(client_id="c1", secret_hash="x", now=9)
    updated = await storage.clients.get(client_id="c1")
    assert updated is not None
    assert (updated.secret_hash, updated.updated_at) == ("x", 9)
    assert not await storage.clients.set_secret_hash(client_id="zz", secret_hash="x", now=9)
    assert await storage.clients.delete(client_id="c1")
    assert not await storage.clients.delete(client_id="c1")


def token(now: float = 10.0, **fields: object) -> AccessTokenRecord:
    split = new_split_token(now)
    values: dict[str, object] = {
        "client_id": "c1",
        "subject": "c1",
        "scope": "a b",
        "issued_at": 10,
        "expires_at": 20,
        "audience": "https://rs",
    }
    values.update(fields)
    return AccessTokenRecord(split.selector, split.verifier_hash, **values)  # type: ignore[arg-type]


async def test_tokens_round_trip_and_single_revocation(storage: SqlStorage) -> None:
    record = token()
    await storage.tokens.add(token=record)
    assert await storage.tokens.get(selector=record.selector) == record
    assert await storage.tokens.get(selector=token().selector) is None
    results = await asyncio.gather(
        *(storage.tokens.revoke(selector=record.selector, now=15) for _ in range(10))
    )
    assert results.count(True) == 1
    revoked = await storage.tokens.get(selector=record.selector)
    assert revoked is not None
    assert revoked.revoked_at == 15
    assert not await storage.tokens.revoke(selector=token().selector, now=15)
    changes = await storage.changes.read(after=0, limit=10)
    assert [(c.kind, c.key) for c in changes] == [("token", record.selector.hex())]


async def test_concurrent_token_inserts_are_all_durable(storage: SqlStorage) -> None:
    records = [token(now=1000 + i / 7) for i in range(300)]
    await asyncio.gather(*(storage.tokens.add(token=r) for r in records))
    for record in records[::37]:
        assert await storage.tokens.get(selector=record.selector) == record


async def test_a_failed_batch_fails_every_waiter(storage: SqlStorage) -> None:
    record = token()
    await storage.tokens.add(token=record)
    outcomes = await asyncio.gather(storage.tokens.add(token=record), return_exceptions=True)
    assert isinstance(outcomes[0], Exception)
    await storage.tokens.add(token=token())


async def test_restaurants(storage: SqlStorage) -> None:
    ids = [f"{i:024x}" for i in range(5)]
    assert await storage.restaurants.add_many(restaurants=[restaurant(i) for i in ids]) == 5
    assert await storage.restaurants.add_many(restaurants=[restaurant(ids[0], "New")]) == 1
    assert await storage.restaurants.count() == 5
    first = await storage.restaurants.get(restaurant_id=ids[0])
    assert first is not None
    assert first.name == "New"
    with pytest.raises(AlreadyExists):
        await storage.restaurants.add(restaurant=restaurant(ids[1]))
    page = await storage.restaurants.list(limit=2, after=ids[1])
    assert [r.restaurant_id for r in page] == ids[2:4]
    updated = await storage.restaurants.update(
        restaurant_id=ids[2], changes=RestaurantChanges(close="23:00"), now=50
    )
    assert updated == Restaurant(ids[2], "R", "Addr", "09:00", "23:00", 1, 50)
    missing = await storage.restaurants.update(
        restaurant_id="f" * 24, changes=RestaurantChanges(name="x"), now=1
    )
    assert missing is None
    assert await storage.restaurants.delete(restaurant_id=ids[2], now=60)
    assert not await storage.restaurants.delete(restaurant_id=ids[2], now=60)
    assert await storage.restaurants.add_many(restaurants=[]) == 0


async def test_meta(storage: SqlStorage) -> None:
    assert await storage.meta.get(key="k") is None
    await storage.meta.set(key="k", value="1")
    await storage.meta.set(key="k", value="2")
    assert await storage.meta.get(key="k") == "2"


async def test_change_feed(storage: SqlStorage) -> None:
    assert await storage.changes.last_id() == 0
    for key in ("a", "b", "c"):
        await storage.changes.publish(kind="client", key=key, now=5)
    changes = await storage.changes.read(after=0, limit=2)
    assert [(c.kind, c.key) for c in changes] == [("client", "a"), ("client", "b")]
    rest = await storage.changes.read(after=changes[-1].change_id, limit=10)
    assert [c.key for c in rest] == ["c"]
    assert await storage.changes.last_id() == rest[0].change_id


async def test_ping(storage: SqlStorage) -> None:
    await storage.ping()
    assert storage.backend in ("sqlite", "postgresql")
