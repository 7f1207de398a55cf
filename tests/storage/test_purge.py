"""The purge on a real database (SQLite and PostgreSQL): thousands of expired rows go, every
live row stays, and purgers in several instances at once do no harm."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from sqlalchemy import insert, select

from oauth_server.clock import FrozenClock
from oauth_server.config import Settings
from oauth_server.maintenance import Purger, PurgeReport
from oauth_server.oauth.keys import KeyEncryption, KeyManager, KeyRing
from oauth_server.storage import SqlStorage, open_storage
from oauth_server.storage.sql.schema import changes, opaque_tokens, revoked_tokens
from tests.helpers import eventually, token_record

NOW = 1_800_000_000
GRACE, RETENTION = 600, 3600


@dataclass
class Filled:
    live_tokens: set[bytes]
    live_jtis: set[str]
    live_changes: set[int]
    expired_tokens: int
    expired_jtis: int
    old_changes: int


async def fill(storage: SqlStorage, *, expired: int = 4000, live: int = 150) -> Filled:
    """Bulk-insert expired and live rows into every purged table. "Live" includes rows that
    expired less than the grace period ago, which must stay too."""

    def token_record(i: int, expires_at: int) -> dict[str, object]:
        return {
            "selector": i.to_bytes(12, "big"),
            "verifier_hash": os.urandom(32),
            "client_id": "c",
            "subject": "c",
            "scope": "a",
            "audience": "https://rs",
            "issued_at": expires_at - 3600,
            "expires_at": expires_at,
            "revoked_at": NOW - 5000 if i % 3 == 0 else None,
        }

    old = [token_record(i, NOW - GRACE - 1 - i % 5000) for i in range(expired)]
    fresh = [token_record(expired + i, NOW - GRACE + i) for i in range(live)]
    old_jtis = [
        {"jti": f"old{i}", "client_id": "c", "expires_at": NOW - GRACE - 1, "revoked_at": 1}
        for i in range(expired)
    ]
    fresh_jtis = [
        {"jti": f"live{i}", "client_id": "c", "expires_at": NOW - GRACE + i, "revoked_at": 1}
        for i in range(live)
    ]
    old_changes = [
        {"kind": "client", "key": f"o{i}", "created_at": NOW - RETENTION - 1}
        for i in range(expired)
    ]
    recent_changes = [
        {"kind": "client", "key": f"r{i}", "created_at": NOW - RETENTION + i} for i in range(live)
    ]
    async with storage.engine.begin() as conn:
        await conn.execute(insert(opaque_tokens), old + fresh)
        await conn.execute(insert(revoked_tokens), old_jtis + fresh_jtis)
        await conn.execute(insert(changes), old_changes)
        await conn.execute(insert(changes), recent_changes)
        recent_ids = await conn.execute(
            select(changes.c.change_id).where(changes.c.created_at >= NOW - RETENTION)
        )
        live_changes = {row.change_id for row in recent_ids}
    return Filled(
        live_tokens={row["selector"] for row in fresh},  # type: ignore[misc]
        live_jtis={row["jti"] for row in fresh_jtis},  # type: ignore[misc]
        live_changes=live_changes,
        expired_tokens=len(old),
        expired_jtis=len(old_jtis),
        old_changes=len(old_changes),
    )


async def remaining(storage: SqlStorage) -> tuple[set[bytes], set[str], set[int]]:
    async with storage.engine.connect() as conn:
        tokens = {bytes(r.selector) for r in await conn.execute(select(opaque_tokens.c.selector))}
        jtis = {r.jti for r in await conn.execute(select(revoked_tokens.c.jti))}
        ids = {r.change_id for r in await conn.execute(select(changes.c.change_id))}
    return tokens, jtis, ids


def purger(
    storage: SqlStorage, clock: FrozenClock, *, batch_size: int = 500, interval: float = 300
) -> Purger:
    keys = KeyManager(
        storage,
        KeyRing(token_ttl=3600, leeway=30),
        encryption=KeyEncryption(b"k" * 32),
        clock=clock,
    )
    return Purger(
        storage,
        keys=keys,
        clock=clock,
        interval=interval,
        batch_size=batch_size,
        pause=0.001,
        grace=GRACE,
        change_retention=RETENTION,
    )


async def test_purge_removes_every_expired_row_and_keeps_every_live_one(
    storage: SqlStorage,
) -> None:
    filled = await fill(storage)
    report = await purger(storage, FrozenClock(NOW)).run_once()
    assert report == PurgeReport(filled.expired_tokens, filled.expired_jtis, filled.old_changes)
    assert await remaining(storage) == (
        filled.live_tokens,
        filled.live_jtis,
        filled.live_changes,
    )
    # Live rows are readable through the repositories as before.
    for selector in list(filled.live_tokens)[:5]:
        assert await storage.tokens.get(selector=selector) is not None
    assert await purger(storage, FrozenClock(NOW)).run_once() == PurgeReport()


async def test_purgers_in_several_instances_at_once(database_url: str) -> None:
    instances = [open_storage(database_url, pool_size=4) for _ in range(3)]
    try:
        await instances[0].migrate()
        filled = await fill(instances[0])
        purgers = [purger(s, FrozenClock(NOW), batch_size=300) for s in instances]
        reports = await asyncio.gather(*(p.run_once() for p in purgers))
        assert sum(r.opaque_tokens for r in reports) == filled.expired_tokens
        assert sum(r.revoked_tokens for r in reports) == filled.expired_jtis
        assert sum(r.changes for r in reports) == filled.old_changes
        assert await remaining(instances[1]) == (
            filled.live_tokens,
            filled.live_jtis,
            filled.live_changes,
        )
    finally:
        for store in instances:
            await store.close()


async def test_token_writes_go_on_while_a_purge_runs(storage: SqlStorage) -> None:
    await fill(storage, expired=3000, live=1)
    records = [token_record(now=NOW + i / 10, expires_at=NOW + 3600) for i in range(200)]
    report, *_ = await asyncio.gather(
        purger(storage, FrozenClock(NOW), batch_size=200).run_once(),
        *(storage.tokens.add(token=r) for r in records),
    )
    assert report is not None
    assert report.opaque_tokens == 3000
    for record in records[::20]:
        assert await storage.tokens.get(selector=record.selector) == record


async def test_the_background_purge_runs_every_interval(storage: SqlStorage) -> None:
    await fill(storage, expired=50, live=5)
    clock = FrozenClock(NOW)
    background = purger(storage, clock, interval=0.02)
    await background.start()
    try:

        async def purged() -> bool:
            tokens, _, _ = await remaining(storage)
            return len(tokens) == 5

        await eventually(purged)
    finally:
        await background.stop()


async def test_the_purge_interval_is_jittered_by_a_quarter(
    storage: SqlStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README: every instance purges every ``OAUTH_SERVER_PURGE_INTERVAL`` seconds jittered
    ±25 %, so that instances started together do not purge in step."""
    schedules: list[Callable[[], float]] = []

    class Recorded:
        def __init__(self, *_args: object, interval: Callable[[], float], **_kw: object) -> None:
            schedules.append(interval)

    monkeypatch.setattr("oauth_server.maintenance.Periodic", Recorded)
    purger(storage, FrozenClock(NOW), interval=100)
    waits = [schedules[0]() for _ in range(200)]
    assert all(75 <= wait <= 125 for wait in waits)
    assert min(waits) < 90  # spread over the range, not one value
    assert max(waits) > 110


async def test_a_purge_interval_of_0_turns_the_background_purge_off(storage: SqlStorage) -> None:
    """README: ``OAUTH_SERVER_PURGE_INTERVAL`` 0 turns it off (``db purge`` still runs a pass)."""
    await fill(storage, expired=5, live=5)
    background = purger(storage, FrozenClock(NOW), interval=0)
    await background.start()
    try:
        assert not background.running
    finally:
        await background.stop()
    tokens, _, _ = await remaining(storage)
    assert len(tokens) == 10  # nothing purged by itself
    await background.run_once()
    tokens, _, _ = await remaining(storage)
    assert len(tokens) == 5


async def test_services_start_and_stop_the_purge(settings: Settings, clock: FrozenClock) -> None:
    from oauth_server.bootstrap import prepare
    from oauth_server.services import build_services
    from oauth_server.storage import RevokedToken

    services = build_services(settings.model_copy(update={"purge_interval": 0.02}), clock=clock)
    await prepare(services.settings, services.storage, clock=clock)
    await services.start()
    assert services.purger.running
    try:
        old = RevokedToken(jti="old", client_id="c", expires_at=1, revoked_at=1)
        await services.storage.revocations.add(token=old)

        async def purged() -> bool:
            return await services.storage.revocations.active(now=0) == []

        await eventually(purged)
    finally:
        await services.close()
    assert not services.purger.running


async def test_changes_are_kept_as_long_as_a_token_lives(
    storage: SqlStorage, settings: Settings
) -> None:
    """A revoked JWT's announcement outlives the token, so a process that was cut off from
    the database catches up on every revocation that still matters."""
    from oauth_server.services import build_key_manager, build_purger

    day = settings.model_copy(update={"access_token_ttl": 86_400})
    for age in (90_000, 80_000, 4000, 0):
        await storage.changes.publish(kind="jti", key=f"age{age}", now=NOW - age)
    clock = FrozenClock(NOW)
    keys = build_key_manager(day, storage, clock)
    assert (await build_purger(day, storage, keys, clock).run_once()).changes == 1
    left = [c.key for c in await storage.changes.read(after=0, limit=10)]
    assert left == ["age80000", "age4000", "age0"]
    hour = build_purger(settings, storage, build_key_manager(settings, storage, clock), clock)
    assert (await hour.run_once()).changes == 2  # default TTL: an hour
