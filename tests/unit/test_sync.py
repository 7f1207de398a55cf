"""The change feed reader: ordering gaps, dispatch, and the bounded cache."""

from __future__ import annotations

import logging

import pytest

from oauth_server.cache import TTLCache
from oauth_server.clock import FrozenClock
from oauth_server.storage.models import Change
from oauth_server.sync import ChangeSync
from tests.helpers import eventually


class ScriptedFeed:
    """A feed whose committed rows the test controls (ids may commit out of order)."""

    def __init__(self) -> None:
        self.rows: list[Change] = []

    def commit(self, change_id: int, key: str) -> None:
        self.rows.append(Change(change_id, "client", key))
        self.rows.sort(key=lambda c: c.change_id)

    async def publish(self, *, kind: str, key: str, now: int) -> None:
        raise NotImplementedError

    async def read(self, *, after: int, limit: int) -> list[Change]:
        return [c for c in self.rows if c.change_id > after][:limit]

    async def last_id(self) -> int:
        return max((c.change_id for c in self.rows), default=0)

    async def purge_older(self, *, before: int, limit: int) -> int:
        raise NotImplementedError


async def test_late_commit_below_the_high_water_mark_is_not_lost() -> None:
    feed, clock, seen = ScriptedFeed(), FrozenClock(), []
    sync = ChangeSync(feed, clock=clock, gap_timeout=30)
    sync.subscribe("client", lambda change: seen.append(change.key))
    feed.commit(1, "a")
    feed.commit(3, "c")  # id 2 is still in flight in another transaction
    assert await sync.poll() == 2
    feed.commit(2, "b")
    assert await sync.poll() == 1
    assert await sync.poll() == 0
    assert seen == ["a", "c", "b"]


async def test_gaps_that_never_fill_are_forgotten() -> None:
    feed, clock, seen = ScriptedFeed(), FrozenClock(), []
    sync = ChangeSync(feed, clock=clock, gap_timeout=30)
    sync.subscribe("client", lambda change: seen.append(change.key))
    feed.commit(5, "e")
    await sync.poll()
    clock.advance(31)
    await sync.poll()
    feed.commit(2, "late")  # a commit this late is beyond the documented bound
    await sync.poll()
    assert seen == ["e"]


async def test_reads_in_batches_until_caught_up() -> None:
    feed, seen = ScriptedFeed(), []
    sync = ChangeSync(feed, clock=FrozenClock(), batch=10)
    sync.subscribe("client", lambda change: seen.append(change.key))
    for i in range(1, 26):
        feed.commit(i, str(i))
    assert await sync.poll() == 25
    assert seen == [str(i) for i in range(1, 26)]


async def test_a_failing_subscriber_does_not_stop_the_others() -> None:
    feed, seen = ScriptedFeed(), []
    sync = ChangeSync(feed, clock=FrozenClock())

    def broken(change: Change) -> None:
        raise RuntimeError("boom")

    sync.subscribe("client", broken)
    sync.subscribe("client", lambda change: seen.append(change.key))
    feed.commit(1, "a")
    await sync.poll()
    assert seen == ["a"]


def test_ttl_cache_expires_and_evicts() -> None:
    now = [0.0]
    cache: TTLCache[str, int] = TTLCache(max_entries=2, monotonic=lambda: now[0])
    cache.set("a", 1, ttl=10)
    cache.set("b", 2, ttl=10)
    cache.set("c", 3, ttl=10)
    assert cache.get("a") == (False, None)
    assert cache.get("b") == (True, 2)
    now[0] = 11
    assert cache.get("c") == (False, None)
    cache.set("n", 0, ttl=0)
    assert len(cache) == 1  # b is expired but not yet collected; n was not stored


class FailingFeed(ScriptedFeed):
    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    async def read(self, *, after: int, limit: int) -> list[Change]:
        raise self.error


async def _poll_in_background(feed: ScriptedFeed, caplog: pytest.LogCaptureFixture) -> None:
    """Until the background poll has failed twice (it keeps polling after a failure)."""
    sync = ChangeSync(feed, clock=FrozenClock(), interval=0.01)
    with caplog.at_level(logging.WARNING, logger="oauth_server.sync"):
        await sync.start()
        try:
            await eventually(lambda: len(caplog.records) >= 2, within=5)
        finally:
            await sync.stop()


async def test_polls_while_the_database_is_down_log_one_line_each(
    caplog: pytest.LogCaptureFixture,
) -> None:
    await _poll_in_background(FailingFeed(ConnectionRefusedError(111, "refused")), caplog)
    for record in caplog.records:
        assert record.getMessage().startswith("change feed poll failed: database unavailable")
        assert record.exc_info is None


async def test_an_unexpected_poll_failure_logs_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    await _poll_in_background(FailingFeed(ValueError("a bug")), caplog)
    assert caplog.records
    assert all(record.exc_info is not None for record in caplog.records)


class SwitchableFeed(ScriptedFeed):
    def __init__(self) -> None:
        super().__init__()
        self.down = False

    async def read(self, *, after: int, limit: int) -> list[Change]:
        if self.down:
            raise ConnectionError("database down")
        return await super().read(after=after, limit=limit)


async def test_the_feed_is_current_only_while_it_is_read() -> None:
    feed = SwitchableFeed()
    now = [100.0]
    sync = ChangeSync(feed, clock=FrozenClock(), interval=1.0, monotonic=lambda: now[0])
    assert not sync.current()  # never read: nothing can be trusted yet
    await sync.start()
    await sync.stop()  # polled by hand below
    assert sync.current()
    now[0] += 4.0  # three intervals and a second
    assert sync.current()
    now[0] += 0.1
    assert not sync.current()
    await sync.poll()
    assert sync.current()
    feed.down = True
    now[0] += 2.0
    with pytest.raises(ConnectionError):
        await sync.poll()
    now[0] += 2.1  # the last successful read is now 4.1 s old
    assert not sync.current()
    feed.down = False
    await sync.poll()
    assert sync.current()
