"""Group commit: callers wait for their own batch, and an outage fails the queue at once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from oauth_server.storage.sql.batching import GroupCommitter


class GatedWriter:
    """Writes batches when the test opens the gate, failing with ``error`` if one is set."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.batches: list[list[dict[str, Any]]] = []
        self.gate = asyncio.Event()

    async def __call__(self, rows: list[dict[str, Any]]) -> None:
        self.batches.append(rows)
        await self.gate.wait()
        if self.error is not None:
            raise self.error

    async def close(self) -> None:
        return None


async def _two_batches(writer: GatedWriter) -> tuple[asyncio.Task[None], asyncio.Task[None]]:
    committer = GroupCommitter(writer)
    first = asyncio.create_task(committer.insert({"n": 1}))
    await asyncio.sleep(0)  # the first batch is being written
    second = asyncio.create_task(committer.insert({"n": 2}))
    await asyncio.sleep(0)
    assert writer.batches == [[{"n": 1}]]
    writer.gate.set()
    await asyncio.wait([first, second], timeout=5)
    return first, second


async def test_rows_queued_behind_a_batch_are_written_in_the_next() -> None:
    writer = GatedWriter()
    first, second = await _two_batches(writer)
    assert first.result() is None
    assert second.result() is None
    assert writer.batches == [[{"n": 1}], [{"n": 2}]]


async def test_when_the_database_is_unreachable_the_queue_fails_with_the_batch() -> None:
    writer = GatedWriter(ConnectionRefusedError(111, "refused"))
    first, second = await _two_batches(writer)
    for task in (first, second):
        with pytest.raises(ConnectionRefusedError):
            task.result()
    assert writer.batches == [[{"n": 1}]]  # the second row never waited for a batch of its own


async def test_any_other_failure_fails_only_its_own_batch() -> None:
    writer = GatedWriter(ValueError("bad row"))
    first, second = await _two_batches(writer)
    for task in (first, second):
        with pytest.raises(ValueError, match="bad row"):
            task.result()
    assert writer.batches == [[{"n": 1}], [{"n": 2}]]
