"""The audit trail's hash chains and its buffered writer, against an in-memory table."""

from __future__ import annotations

import asyncio
import hashlib
import os
from dataclasses import replace
from typing import Any

import orjson
import pytest

from oauth_server.audit import AuditTrail, verify_trail
from oauth_server.audit.chain import GENESIS, seal
from oauth_server.clock import FrozenClock
from oauth_server.storage import AuditRecord
from tests.fakes import MemoryAuditRepository
from tests.helpers import eventually


@pytest.fixture
def table() -> MemoryAuditRepository:
    return MemoryAuditRepository()


@pytest.fixture
def audit_clock() -> FrozenClock:
    """A start with a fraction of a second: timestamps are kept to the millisecond."""
    return FrozenClock(1_800_000_000.25)


async def written_chain(table: MemoryAuditRepository, audit_clock: FrozenClock, n: int = 5) -> str:
    trail = AuditTrail(table, clock=audit_clock)
    for i in range(n):
        audit_clock.advance(0.001)
        trail.record("client_auth_failed", client_id=f"c{i}", ip="10.0.0.1", reason="wrong_secret")
    await trail.flush()
    return trail.chain_id


async def problems(table: MemoryAuditRepository) -> list[str]:
    return [p for report in await verify_trail(table, page=2) for p in report.problems]


def test_sealing_follows_the_documented_formula() -> None:
    record = seal(
        previous=GENESIS, chain_id="c", seq=1, at_ms=5, kind="k", fields={"b": 1, "a": "é"}
    )
    assert record.data == '{"a":"é","b":1}'
    envelope = b'{"at_ms":5,"chain_id":"c","data":{"a":"\xc3\xa9","b":1},"kind":"k","seq":1}'
    assert record.digest == hashlib.sha256(GENESIS + envelope).digest()


async def test_recorded_events_form_a_verifiable_chain(
    table: MemoryAuditRepository, audit_clock: FrozenClock
) -> None:
    chain = await written_chain(table, audit_clock)
    rows = await table.scan(after=None, limit=100)
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[0].kind == "chain_started"
    assert orjson.loads(rows[0].data)["pid"] == os.getpid()
    assert orjson.loads(rows[1].data) == {
        "client_id": "c0",
        "ip": "10.0.0.1",
        "reason": "wrong_secret",
    }
    assert rows[1].at_ms == 1_800_000_000_251
    [report] = await verify_trail(table, page=4)
    assert (report.chain_id, report.events, report.ok) == (chain, 6, True)
    assert report.head == rows[-1].digest


async def test_a_modified_row_is_reported_alone(
    table: MemoryAuditRepository, audit_clock: FrozenClock
) -> None:
    chain = await written_chain(table, audit_clock)
    row = table.rows[(chain, 3)]
    table.rows[(chain, 3)] = replace(row, data=row.data.replace("c1", "c9"))
    assert await problems(table) == ["event 3 does not match its digest (modified or reordered)"]
    table.rows[(chain, 3)] = replace(row, at_ms=row.at_ms + 1)
    assert await problems(table) == ["event 3 does not match its digest (modified or reordered)"]
    table.rows[(chain, 3)] = replace(row, data="not json")
    assert await problems(table) == ["event 3 has malformed data (modified)"]


async def test_rows_deleted_from_the_middle_or_the_start_are_reported(
    table: MemoryAuditRepository, audit_clock: FrozenClock
) -> None:
    chain = await written_chain(table, audit_clock)
    del table.rows[(chain, 3)], table.rows[(chain, 4)]
    assert await problems(table) == ["events 3..4 are missing (deleted)"]
    del table.rows[(chain, 1)]
    assert await problems(table) == [
        "events 1..1 are missing (deleted)",
        "events 3..4 are missing (deleted)",
    ]


async def test_reordered_rows_are_reported(
    table: MemoryAuditRepository, audit_clock: FrozenClock
) -> None:
    chain = await written_chain(table, audit_clock)
    two, three = table.rows[(chain, 2)], table.rows[(chain, 3)]
    # Swapping the contents of two positions (sequence numbers stay in place)...
    table.rows[(chain, 2)] = replace(three, seq=2)
    table.rows[(chain, 3)] = replace(two, seq=3)
    # (event 4 follows the digest now stored at position 3, which is no longer its own)
    assert [p.split(" does")[0] for p in await problems(table)] == ["event 2", "event 3", "event 4"]
    # ...or moving a row into another chain.
    table.rows[(chain, 2)], table.rows[(chain, 3)] = two, three
    table.rows[("0" * 32, 1)] = replace(table.rows[(chain, 1)], chain_id="0" * 32)
    assert await problems(table) == ["event 1 does not match its digest (modified or reordered)"]


async def test_a_chain_cut_at_its_end_verifies_like_a_crash(
    table: MemoryAuditRepository, audit_clock: FrozenClock
) -> None:
    """Documented limit: the tail is where a crash loses events, so only a head digest kept
    elsewhere shows a chain was shortened."""
    chain = await written_chain(table, audit_clock)
    [before] = await verify_trail(table)
    del table.rows[(chain, 6)]
    [after] = await verify_trail(table)
    assert after.ok
    assert after.head != before.head


async def test_record_does_no_io_and_flush_writes_in_batches(audit_clock: FrozenClock) -> None:
    table = MemoryAuditRepository()
    trail = AuditTrail(table, clock=audit_clock, batch_size=4)
    for _ in range(9):
        trail.record("rate_limited", ip="10.0.0.2", limit="10/second")
    assert table.appends == 0
    assert trail.pending == 10
    await trail.flush()
    assert (table.appends, len(table.rows), trail.pending) == (3, 10, 0)


@pytest.mark.parametrize("failure", ["before", "after"])
async def test_failed_writes_are_retried_without_gaps_or_duplicates(
    table: MemoryAuditRepository, audit_clock: FrozenClock, failure: str
) -> None:
    trail = AuditTrail(table, clock=audit_clock, batch_size=2)
    for i in range(5):
        trail.record("client_deleted", client_id=f"c{i}")
    table.fail = ["ok", failure]
    with pytest.raises(ConnectionError):
        await trail.flush()
    trail.record("client_deleted", client_id="later")
    await trail.flush()
    assert sorted(seq for _, seq in table.rows) == [1, 2, 3, 4, 5, 6, 7]
    [report] = await verify_trail(table)
    assert report.ok


async def test_a_full_buffer_counts_what_it_drops_in_the_chain(
    table: MemoryAuditRepository, audit_clock: FrozenClock
) -> None:
    trail = AuditTrail(table, clock=audit_clock, max_buffered=4)
    for i in range(10):
        trail.record("client_auth_failed", client_id=f"c{i}")
    assert trail.pending == 4
    await trail.flush()
    rows = await table.scan(after=None, limit=100)
    assert rows[-1].kind == "audit_events_dropped"
    assert orjson.loads(rows[-1].data)["count"] == 7
    assert all(report.ok for report in await verify_trail(table))


async def test_long_values_are_cut(table: MemoryAuditRepository, audit_clock: FrozenClock) -> None:
    trail = AuditTrail(table, clock=audit_clock)
    trail.record("client_auth_failed", client_id="x" * 5000)
    await trail.flush()
    assert len(orjson.loads(table.rows[(trail.chain_id, 2)].data)["client_id"]) == 256


async def test_background_flush_and_flush_on_close(
    table: MemoryAuditRepository, audit_clock: FrozenClock
) -> None:
    trail = AuditTrail(table, clock=audit_clock, flush_interval=0.01)
    await trail.start()
    trail.record("client_created", client_id="a")
    await eventually(lambda: len(table.rows) == 2, within=5)
    trail.record("client_deleted", client_id="a")
    await trail.close()
    assert len(table.rows) == 3


async def test_each_trail_writes_its_own_chain(
    table: MemoryAuditRepository, audit_clock: FrozenClock
) -> None:
    first, second = AuditTrail(table, clock=audit_clock), AuditTrail(table, clock=audit_clock)
    assert first.chain_id != second.chain_id
    await asyncio.gather(first.flush(), second.flush())
    reports = await verify_trail(table, page=1)
    assert sorted(r.chain_id for r in reports) == sorted([first.chain_id, second.chain_id])
    assert all(r.ok and r.events == 1 for r in reports)


async def test_events_are_sealed_one_batch_at_a_time(
    table: MemoryAuditRepository, audit_clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sealing a second's worth of events at once would stall the event loop."""
    from oauth_server.audit import trail as module

    sealed: list[int] = []

    def counting_seal(**kw: Any) -> Any:
        sealed.append(1)
        return seal(**kw)

    monkeypatch.setattr(module, "seal", counting_seal)
    trail = AuditTrail(table, clock=audit_clock, batch_size=10)
    for _ in range(99):
        trail.record("rate_limited", ip="10.0.0.3")
    seen: list[int] = []
    original = table.append

    async def append(*, records: list[AuditRecord]) -> None:
        seen.append(len(sealed))
        await original(records=records)

    monkeypatch.setattr(table, "append", append)
    await trail.flush()
    assert seen == list(range(10, 101, 10))


async def test_a_flush_ends_under_a_steady_stream(
    table: MemoryAuditRepository, audit_clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    trail = AuditTrail(table, clock=audit_clock, batch_size=1)
    original = table.append

    async def append(*, records: list[AuditRecord]) -> None:
        trail.record("rate_limited", ip="10.0.0.4")  # a request arrives during every write
        await original(records=records)

    monkeypatch.setattr(table, "append", append)
    trail.record("rate_limited", ip="10.0.0.4")
    await trail.flush()
    assert len(table.rows) == 2
    assert trail.pending == 2
