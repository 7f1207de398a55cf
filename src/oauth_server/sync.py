"""Keeps every process's caches in step with the database through the change feed.

Each writer appends ``(kind, key)`` to the ``changes`` table in the same breath as its write;
every process polls the feed every ``interval`` seconds and hands each new change to the
subscribers of its kind. That bounds how stale any cache can be across processes.

Ids from a database sequence can commit out of order (transaction A takes id 5, B takes 6 and
commits first). A reader that kept only a high-water mark would skip 5 forever, so missing ids
below the mark are remembered as gaps and looked for again until they appear or
``gap_timeout`` passes (a rolled-back transaction leaves a gap that never fills).

:meth:`ChangeSync.current` tells whether the feed was read lately (within ``stale_after``
seconds: three intervals and a second by default). A cache that must not outlive a change it
has not heard of — validated opaque tokens — is consulted only while it is; a process cut off
from the database therefore stops answering from such a cache instead of answering stale.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from oauth_server.background import Periodic
from oauth_server.clock import Clock
from oauth_server.storage.errors import log_background_failure
from oauth_server.storage.models import Change
from oauth_server.storage.protocols import ChangeFeed

__all__ = ["ChangeSync"]

log = logging.getLogger(__name__)

Subscriber = Callable[[Change], None]
_MAX_GAPS = 1000  # a larger jump is a burst of rollbacks, not in-flight commits


class ChangeSync:
    def __init__(
        self,
        feed: ChangeFeed,
        *,
        clock: Clock,
        interval: float = 1.0,
        gap_timeout: float = 30.0,
        batch: int = 1000,
        stale_after: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._feed = feed
        self._clock = clock
        self._gap_timeout = gap_timeout
        self._batch = batch
        self._stale_after = 3 * interval + 1.0 if stale_after is None else stale_after
        self._monotonic = monotonic
        self._last_read: float | None = None
        self._subscribers: dict[str, list[Subscriber]] = {}
        self._high = 0
        self._gaps: dict[int, float] = {}
        self._poller = Periodic(
            "change-sync",
            self._poll_logged,
            interval=lambda: interval,
            # The database may be down; caches keep their TTL bound meanwhile.
            on_error=lambda exc: log_background_failure(log, "change feed poll", exc),
        )

    def subscribe(self, kind: str, subscriber: Subscriber) -> None:
        self._subscribers.setdefault(kind, []).append(subscriber)

    async def start(self) -> None:
        """Skip history (caches start empty) and poll in the background."""
        self._high = await self._feed.last_id()
        self._last_read = self._monotonic()
        self._poller.start()

    def current(self) -> bool:
        """``True`` while the feed was read within ``stale_after`` seconds: every change older
        than the sync interval has been dispatched."""
        last = self._last_read
        return last is not None and self._monotonic() - last <= self._stale_after

    async def stop(self) -> None:
        await self._poller.stop()

    async def _poll_logged(self) -> None:
        dispatched = await self.poll()
        if dispatched:  # DEBUG: with opaque-token revocations this can be every poll
            log.debug(
                "applied %d changes from the feed",
                dispatched,
                extra={"fields": {"event": "change_sync", "changes": dispatched}},
            )

    async def poll(self) -> int:
        """Read and dispatch new changes; return how many were dispatched."""
        read_at = self._monotonic()
        now = self._clock.now()
        self._gaps = {i: t for i, t in self._gaps.items() if now - t < self._gap_timeout}
        start = min(self._gaps, default=self._high + 1) - 1
        dispatched = 0
        while True:
            changes = await self._feed.read(after=start, limit=self._batch)
            for change in changes:
                if change.change_id > self._high:
                    first_missing = max(self._high + 1, change.change_id - _MAX_GAPS)
                    for missing in range(first_missing, change.change_id):
                        self._gaps[missing] = now
                    self._high = change.change_id
                elif self._gaps.pop(change.change_id, None) is None:
                    continue  # seen already
                self._dispatch(change)
                dispatched += 1
            if len(changes) < self._batch:
                self._last_read = read_at  # what committed before this read is dispatched
                return dispatched
            start = changes[-1].change_id

    def _dispatch(self, change: Change) -> None:
        for subscriber in self._subscribers.get(change.kind, ()):
            try:
                subscriber(change)
            except Exception:
                log.exception("change subscriber failed for %s", change.kind)
