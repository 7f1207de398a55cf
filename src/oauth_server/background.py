"""Periodic background work (cache polls, key checks, purges, audit writes, JWKS refreshes)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import suppress

__all__ = ["Periodic"]


class Periodic:
    """Runs ``work`` every ``interval()`` seconds on a background task until stopped.

    ``interval`` is called before every wait, so it may jitter. A failure goes to ``on_error``
    and the next round tries again: background work must outlive a database outage.
    """

    def __init__(
        self,
        name: str,
        work: Callable[[], Awaitable[object]],
        *,
        interval: Callable[[], float],
        on_error: Callable[[Exception], None],
    ) -> None:
        self._name = name
        self._work = work
        self._interval = interval
        self._on_error = on_error
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval())
            try:
                await self._work()
            except Exception as exc:
                self._on_error(exc)
