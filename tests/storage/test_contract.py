"""One contract for every storage backend (SQLite and PostgreSQL through ``database_url``)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from oauth_server.crypto import hash_secret
from oauth_server.storage import (
    AlreadyExists,
    AuditRecord,
    Client,
    ClientRevocation,
    Restaurant,
    RestaurantChanges,
    RevokedToken,
    SigningKeyRecord,
    SqlStorage,
    open_storage,
)
from oauth_server.storage.migrate import current_revision, head_revision
from oauth_server.storage.sql.schema import metadata
from tests.helpers import token_record


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
        introspect=("https://rs.example", "https://other.example"),
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
    gone = ClientRevocation(client_id="c1", revoked_at=30, expires_at=3700)
    assert await storage.clients.delete(client_id="c1", revocation=gone)
    assert not await storage.clients.delete(client_id="c1", revocation=gone)
    # The deletion voided the client's tokens in the same transaction, and announced both.
    assert await storage.revocations.active_clients(now=0) == [gone]
    changes = await storage.changes.read(after=0, limit=10)
    assert [(c.kind, c.key) for c in changes] == [("client_tokens", "30 c1")]


async def test_client_revocations_keep_the_latest_cutoff_and_are_purged(
    storage: SqlStorage,
) -> None:
    await storage.revocations.revoke_client(
        revocation=ClientRevocation(client_id="c1", revoked_at=50, expires_at=150)
    )
    # An earlier cutoff (a slower clock elsewhere) never moves it back; a later one moves it.
    await storage.revocations.revoke_client(
        revocation=ClientRevocation(client_id="c1", revoked_at=40, expires_at=140)
    )
    assert [r.revoked_at for r in await storage.revocations.active_clients(now=0)] == [50]
    await storage.revocations.revoke_client(
        revocation=ClientRevocation(client_id="c1", revoked_at=60, expires_at=160)
    )
    await storage.revocations.revoke_client(
        revocation=ClientRevocation(client_id="c2", revoked_at=60, expires_at=500)
    )
    active = await storage.revocations.active_clients(now=0)
    assert sorted(active, key=lambda r: r.client_id) == [
        ClientRevocation(client_id="c1", revoked_at=60, expires_at=160),
        ClientRevocation(client_id="c2", revoked_at=60, expires_at=500),
    ]
    assert [r.client_id for r in await storage.revocations.active_clients(now=200)] == ["c2"]
    changes = await storage.changes.read(after=0, limit=10)
    assert [c.key for c in changes] == ["50 c1", "40 c1", "60 c1", "60 c2"]
    assert await storage.revocations.purge_expired_clients(before=200, limit=10) == 1
    assert [r.client_id for r in await storage.revocations.active_clients(now=0)] == ["c2"]


async def test_tokens_round_trip_and_single_revocation(storage: SqlStorage) -> None:
    record = token_record()
    await storage.tokens.add(token=record)
    assert await storage.tokens.get(selector=record.selector) == record
    assert await storage.tokens.get(selector=token_record().selector) is None
    results = await asyncio.gather(
        *(storage.tokens.revoke(selector=record.selector, now=15) for _ in range(10))
    )
    assert results.count(True) == 1
    revoked = await storage.tokens.get(selector=record.selector)
    assert revoked is not None
    assert revoked.revoked_at == 15
    assert not await storage.tokens.revoke(selector=token_record().selector, now=15)
    changes = await storage.changes.read(after=0, limit=10)
    assert [(c.kind, c.key) for c in changes] == [("token", record.selector.hex())]


async def test_concurrent_token_inserts_are_all_durable(storage: SqlStorage) -> None:
    records = [token_record(now=1000 + i / 7) for i in range(300)]
    await asyncio.gather(*(storage.tokens.add(token=r) for r in records))
    for record in records[::37]:
        assert await storage.tokens.get(selector=record.selector) == record


async def test_a_failed_batch_fails_every_waiter(storage: SqlStorage) -> None:
    """Inserts queued together share one transaction: when one row breaks it, every waiter
    gets the error (none a false success) and none of the batch's rows is stored."""
    record = token_record()
    await storage.tokens.add(token=record)
    fresh = [token_record(now=20.0 + i) for i in range(4)]
    # Queued in one tick, so one batch: the duplicate in the middle of four fresh rows.
    batch = [*fresh[:2], record, *fresh[2:]]
    outcomes = await asyncio.wait_for(
        asyncio.gather(*(storage.tokens.add(token=r) for r in batch), return_exceptions=True),
        10,
    )
    assert [type(outcome) for outcome in outcomes] == [IntegrityError] * len(batch), outcomes
    for row in fresh:
        assert await storage.tokens.get(selector=row.selector) is None
    await storage.tokens.add(token=fresh[0])  # the next batch is written normally
    assert await storage.tokens.get(selector=fresh[0].selector) == fresh[0]


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


async def test_ping(storage: SqlStorage, database_url: str) -> None:
    await storage.ping()
    assert storage.backend == database_url.partition(":")[0]


async def test_tokens_purge_expired_in_bounded_batches(storage: SqlStorage) -> None:
    expired = [token_record(now=100 + i, expires_at=50 + i) for i in range(7)]
    live = [token_record(now=200 + i, expires_at=100 + i) for i in range(3)]
    for record in [*expired, *live]:
        await storage.tokens.add(token=record)
    await storage.tokens.revoke(selector=expired[0].selector, now=60)  # revoked ones go too
    assert await storage.tokens.purge_expired(before=100, limit=4) == 4
    assert await storage.tokens.purge_expired(before=100, limit=4) == 3
    assert await storage.tokens.purge_expired(before=100, limit=4) == 0
    for record in expired:
        assert await storage.tokens.get(selector=record.selector) is None
    for record in live:  # expires_at == before is not "before"
        assert await storage.tokens.get(selector=record.selector) == record


def revoked(jti: str, expires_at: int) -> RevokedToken:
    return RevokedToken(jti=jti, client_id="c1", expires_at=expires_at, revoked_at=1)


async def test_revocations_purge_expired(storage: SqlStorage) -> None:
    for i in range(5):
        await storage.revocations.add(token=revoked(f"old{i}", 10 + i))
    await storage.revocations.add(token=revoked("live", 100))
    assert await storage.revocations.purge_expired(before=50, limit=3) == 3
    assert await storage.revocations.purge_expired(before=50, limit=3) == 2
    assert [t.jti for t in await storage.revocations.active(now=0)] == ["live"]
    assert await storage.revocations.add(token=revoked("old0", 10))  # may be recorded again


async def test_change_feed_purge_keeps_recent_changes_and_the_newest(storage: SqlStorage) -> None:
    for i in range(5):
        await storage.changes.publish(kind="client", key=f"old{i}", now=10)
    await storage.changes.publish(kind="client", key="new", now=100)
    assert await storage.changes.purge_older(before=50, limit=2) == 2
    assert await storage.changes.purge_older(before=50, limit=10) == 3
    assert [c.key for c in await storage.changes.read(after=0, limit=10)] == ["new"]
    # Even when every change is old, the newest stays: it is where a starting reader begins.
    last = await storage.changes.last_id()
    assert await storage.changes.purge_older(before=10_000, limit=10) == 0
    assert await storage.changes.last_id() == last
    await storage.changes.publish(kind="client", key="next", now=200)
    assert await storage.changes.last_id() > last  # ids are never reused after a purge


async def test_signing_keys_delete(storage: SqlStorage) -> None:
    record = SigningKeyRecord("k1", 1, "ES256", "{}", b"x", 1, 1)
    await storage.keys.add(key=record)
    await storage.keys.add(key=SigningKeyRecord("k2", 2, "ES256", "{}", b"x", 1, 2))
    assert await storage.keys.delete(kid="k1")
    assert not await storage.keys.delete(kid="k1")
    assert [k.kid for k in await storage.keys.list()] == ["k2"]


async def test_signing_keys_remove_erases_and_replace_is_conditional(storage: SqlStorage) -> None:
    await storage.keys.add(key=SigningKeyRecord("k1", 1, "ES256", "{}", b"old", 1, 1))
    assert not await storage.keys.replace_private_key(kid="k1", old=b"other", new=b"new")
    assert await storage.keys.replace_private_key(kid="k1", old=b"old", new=b"new")
    assert not await storage.keys.replace_private_key(kid="k1", old=b"old", new=b"newer")
    assert (await storage.keys.list())[0].private_key == b"new"
    assert await storage.keys.remove(kid="k1", now=5)
    assert not await storage.keys.remove(kid="k1", now=6)
    removed = (await storage.keys.list())[0]
    assert (removed.removed_at, removed.private_key) == (5, b"")


async def test_concurrent_purges_delete_each_row_once(database_url: str) -> None:
    stores = [open_storage(database_url, pool_size=3) for _ in range(2)]
    try:
        await stores[0].migrate()
        for i in range(40):
            await stores[0].revocations.add(token=revoked(f"j{i:03}", 10))
        await stores[0].revocations.add(token=revoked("live", 100))

        async def drain(store: SqlStorage) -> int:
            total = 0
            while n := await store.revocations.purge_expired(before=50, limit=3):
                total += n
            return total

        counts = await asyncio.gather(*(drain(s) for s in stores for _ in range(3)))
        assert sum(counts) == 40
        assert [t.jti for t in await stores[1].revocations.active(now=0)] == ["live"]
    finally:
        for store in stores:
            await store.close()


def audit(chain: str, seq: int, at_ms: int = 1000) -> AuditRecord:
    return AuditRecord(chain, seq, at_ms, "client_created", '{"client_id":"c1"}', bytes([seq]) * 32)


async def test_audit_append_is_idempotent_and_scans_in_chain_order(storage: SqlStorage) -> None:
    await storage.audit.append(records=[])
    await storage.audit.append(records=[audit("b", 1, 5), audit("b", 2, 7), audit("a", 1, 6)])
    # A batch written again (its first commit was in doubt) changes nothing and raises nothing.
    await storage.audit.append(records=[audit("b", 2, 7), audit("b", 3, 8)])
    everything = await storage.audit.scan(after=None, limit=100)
    assert [(r.chain_id, r.seq) for r in everything] == [("a", 1), ("b", 1), ("b", 2), ("b", 3)]
    assert everything[2] == audit("b", 2, 7)
    page = await storage.audit.scan(after=("a", 1), limit=2)
    assert [(r.chain_id, r.seq) for r in page] == [("b", 1), ("b", 2)]
    assert await storage.audit.scan(after=("b", 3), limit=2) == []
    newest = await storage.audit.recent(limit=2)
    assert [(r.chain_id, r.seq) for r in newest] == [("b", 3), ("b", 2)]


async def test_token_writes_wait_for_a_lock_held_in_this_process(storage: SqlStorage) -> None:
    """On SQLite a batch is written on the event loop only if the write lock is free; a lock
    held by a transaction of this same process (which needs the loop to finish) must send the
    batch to a waiting thread instead of deadlocking the loop."""
    record = token_record()
    async with storage.engine.begin() as conn:
        await conn.execute(text("UPDATE server_meta SET value = value"))
        await conn.execute(text("INSERT INTO server_meta (key, value) VALUES ('lock', 'held')"))
        writing = asyncio.create_task(storage.tokens.add(token=record))
        # The holder's next statement needs the loop: it completes while the write waits (an
        # inline write that waited for the lock would hold the loop for the whole 10 s busy
        # timeout, past this deadline).
        await asyncio.wait_for(conn.execute(text("SELECT 1")), 5)
        assert not writing.done()
    await asyncio.wait_for(writing, 10)
    assert await storage.tokens.get(selector=record.selector) == record
