"""What the admin API needs of storage, on every backend: the audit query (kind, client,
user, time range, newest-first cursor), client and user pages with substring search, and
migration 0015's copy of old events' client and user ids into the query columns."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from oauth_server.audit.chain import GENESIS, seal
from oauth_server.storage import SqlStorage, open_storage
from oauth_server.storage.migrate import upgrade
from oauth_server.storage.models import AuditQuery, AuditRecord, Client, User
from oauth_server.storage.sql.schema import audit_events


def event(seq: int, at_ms: int, kind: str, chain: str = "c" * 32, **fields: object) -> AuditRecord:
    return seal(previous=GENESIS, chain_id=chain, seq=seq, at_ms=at_ms, kind=kind, fields=fields)


EVENTS = [
    event(1, 1000, "client_created", client_id="a"),
    event(2, 2000, "client_updated", client_id="a", actor_client_id="b"),
    event(3, 3000, "user_created", user_id="u1", username="x"),
    event(4, 3000, "client_created", client_id="b"),
    event(5, 4000, "refresh_family_revoked", client_id="a", user_id="u1"),
    event(1, 3000, "client_created", chain="d" * 32, client_id="a_"),
]


def seqs(records: list[AuditRecord]) -> list[tuple[str, int]]:
    return [(r.chain_id[0], r.seq) for r in records]


async def test_audit_query_filters_newest_first(storage: SqlStorage) -> None:
    await storage.audit.append(records=EVENTS)
    query = storage.audit.query
    assert seqs(await query(query=AuditQuery(), limit=10)) == [
        ("c", 5), ("d", 1), ("c", 4), ("c", 3), ("c", 2), ("c", 1)
    ]  # fmt: skip
    kinds = AuditQuery(kinds=("client_created",))
    assert seqs(await query(query=kinds, limit=10)) == [("d", 1), ("c", 4), ("c", 1)]
    # client_id matches the field exactly: not the actor, not a LIKE pattern ("a_").
    by_client = AuditQuery(client_id="a")
    assert seqs(await query(query=by_client, limit=10)) == [("c", 5), ("c", 2), ("c", 1)]
    by_user = AuditQuery(user_id="u1")
    assert seqs(await query(query=by_user, limit=10)) == [("c", 5), ("c", 3)]
    window = AuditQuery(since_ms=2000, until_ms=4000)
    assert seqs(await query(query=window, limit=10)) == [("d", 1), ("c", 4), ("c", 3), ("c", 2)]
    both = AuditQuery(kinds=("client_created", "client_updated"), client_id="a", since_ms=1500)
    assert seqs(await query(query=both, limit=10)) == [("c", 2)]


async def test_audit_query_pages_by_cursor_without_gaps(storage: SqlStorage) -> None:
    await storage.audit.append(records=EVENTS)
    seen: list[tuple[str, int]] = []
    before: tuple[int, str, int] | None = None
    while True:
        page = await storage.audit.query(query=AuditQuery(before=before), limit=2)
        seen += seqs(page)
        if len(page) < 2:
            break
        last = page[-1]
        before = (last.at_ms, last.chain_id, last.seq)
    assert seen == [("c", 5), ("d", 1), ("c", 4), ("c", 3), ("c", 2), ("c", 1)]


def client(client_id: str, name: str = "") -> Client:
    return Client(client_id=client_id, secret_hash=None, name=name, auth_methods=frozenset())


async def test_clients_page_and_search(storage: SqlStorage) -> None:
    for client_id, name in [("b", "Billing"), ("a", "Alpha"), ("c_1", "50% off"), ("cx1", "")]:
        await storage.clients.add(client=client(client_id, name))
    clients = storage.clients
    assert [c.client_id for c in await clients.list()] == ["a", "b", "c_1", "cx1"]
    assert [c.client_id for c in await clients.list(limit=2, after="a")] == ["b", "c_1"]
    assert [c.client_id for c in await clients.list(search="BILL")] == ["b"]
    assert [c.client_id for c in await clients.list(search="c_")] == ["c_1"]  # _ is plain
    assert [c.client_id for c in await clients.list(search="%")] == ["c_1"]  # so is %
    assert [c.client_id for c in await clients.list(search="a", limit=1)] == ["a"]


async def test_users_search(storage: SqlStorage) -> None:
    for username, name, email in [
        ("alice", "Alice", "alice@example.com"),
        ("bob", "Bob Alison", "b@example.org"),
        ("carol", "Carol", "c@example.org"),
    ]:
        await storage.users.add(
            user=User(
                user_id=f"id-{username}",
                username=username,
                password_hash="x",
                name=name,
                email=email,
            )
        )
    users = storage.users
    assert [u.username for u in await users.list(limit=10, search="ALI")] == ["alice", "bob"]
    assert [u.username for u in await users.list(limit=10, search=".org")] == ["bob", "carol"]
    assert [u.username for u in await users.list(limit=1, after="alice", search="o")] == ["bob"]


async def test_migration_0015_copies_old_events_ids_into_the_query_columns(
    tmp_path: Path,
) -> None:
    store = open_storage(f"sqlite:///{tmp_path}/old.db")
    try:
        await upgrade(store.engine, "0010")
        old = [event(1, 1000, "client_created", client_id="a"), event(2, 2000, "user_created",
               user_id="u1"), event(3, 3000, "chain_started", pid=1)]  # fmt: skip
        async with store.engine.begin() as conn:
            await conn.execute(
                sa.insert(
                    sa.table(
                        "audit_events",
                        *(
                            sa.column(n)
                            for n in ("chain_id", "seq", "at_ms", "kind", "data", "digest")
                        ),
                    )
                ),
                [
                    {
                        "chain_id": r.chain_id,
                        "seq": r.seq,
                        "at_ms": r.at_ms,
                        "kind": r.kind,
                        "data": r.data,
                        "digest": r.digest,
                    }
                    for r in old
                ],
            )
        await upgrade(store.engine, "head")
        async with store.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(
                        audit_events.c.seq, audit_events.c.client_id, audit_events.c.user_id
                    ).order_by(audit_events.c.seq)
                )
            ).all()
        assert [tuple(row) for row in rows] == [(1, "a", None), (2, None, "u1"), (3, None, None)]
        found = await store.audit.query(query=AuditQuery(user_id="u1"), limit=5)
        assert [r.seq for r in found] == [2]
    finally:
        await store.close()
