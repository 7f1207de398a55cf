"""ClientDirectory: the request path's client cache.

Known and unknown ids cost the same (issue 8 finding 8): both are remembered for the same
time, so a made-up id does not reach the database more often than a real one; and a lookup in
flight when a change arrives is answered once but not remembered.
"""

from __future__ import annotations

import asyncio

from oauth_server.oauth.clients import ClientDirectory
from oauth_server.storage.models import Change, Client
from tests.fakes import MemoryClients, make_client


class Ticking:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_known_and_unknown_ids_are_remembered_equally_long() -> None:
    clients = MemoryClients(make_client("app"))
    time = Ticking()
    directory = ClientDirectory(clients, ttl=60.0, monotonic=time)
    assert await directory.get("app") is not None
    assert await directory.get("nope") is None
    assert clients.lookups == 2
    for moment in (1.0, 5.0, 30.0, 59.0):
        time.now = moment
        assert await directory.get("app") is not None
        assert await directory.get("nope") is None
        assert clients.lookups == 2, f"a database read at {moment} s"
    time.now = 60.0
    await directory.get("app")
    await directory.get("nope")
    assert clients.lookups == 4


async def test_a_new_client_is_found_once_its_change_arrives() -> None:
    clients = MemoryClients()
    directory = ClientDirectory(clients)
    assert await directory.get("late") is None
    clients.rows["late"] = make_client("late")
    directory.on_change(Change(change_id=1, kind="client", key="late"))
    assert await directory.get("late") is not None


class SlowClients(MemoryClients):
    def __init__(self, *clients: Client) -> None:
        super().__init__(*clients)
        self.gate = asyncio.Event()
        self.reading = asyncio.Event()

    async def get(self, *, client_id: str) -> Client | None:
        row = await super().get(client_id=client_id)
        self.reading.set()
        await self.gate.wait()
        return row


async def test_a_lookup_in_flight_during_a_deletion_is_not_remembered() -> None:
    clients = SlowClients(make_client("app"))
    directory = ClientDirectory(clients)
    in_flight = asyncio.create_task(directory.get("app"))
    await clients.reading.wait()
    del clients.rows["app"]  # deleted, and the change arrives, while the read is in flight
    directory.on_change(Change(change_id=1, kind="client", key="app"))
    clients.gate.set()
    assert await in_flight is not None  # read before the deletion
    assert await directory.get("app") is None
