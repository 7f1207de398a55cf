from __future__ import annotations

import asyncio

from oauth_server.background import Periodic


async def test_runs_every_interval_survives_failures_and_stops() -> None:
    calls: list[int] = []
    errors: list[Exception] = []
    fourth = asyncio.Event()

    async def work() -> None:
        calls.append(len(calls))
        if len(calls) == 2:
            raise RuntimeError("database down")
        if len(calls) == 4:
            fourth.set()

    periodic = Periodic("t", work, interval=lambda: 0.01, on_error=errors.append)
    periodic.start()
    periodic.start()  # idempotent
    await asyncio.wait_for(fourth.wait(), 5)
    await periodic.stop()
    assert not periodic.running
    assert [str(e) for e in errors] == ["database down"]
    count = len(calls)
    await asyncio.sleep(0.05)
    assert len(calls) == count
