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

    # Interval 0: a round on every turn of the event loop, so a loop that outlived stop()
    # would show within a few turns.
    periodic = Periodic("t", work, interval=lambda: 0.0, on_error=errors.append)
    periodic.start()
    periodic.start()  # idempotent
    await asyncio.wait_for(fourth.wait(), 5)
    await periodic.stop()
    assert not periodic.running
    assert [str(e) for e in errors] == ["database down"]
    count = len(calls)
    for _ in range(20):
        await asyncio.sleep(0)
    assert len(calls) == count
