"""The user grants across two real server processes on one PostgreSQL database: of 20
parallel redemptions of one code, and of 20 parallel refreshes of one token, spread over both
instances, exactly one succeeds; a replayed code's JWT is refused by the other instance within
the sync interval."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from oauth_server.storage import open_storage
from tests.helpers import MULTI_INSTANCE_ENV as ENV
from tests.helpers import eventually
from tests.process import ServerProcess
from tests.signin import PUBLIC_ID, REDIRECT, SeededCode, add_world, seed_code

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SCOPE = "restaurent restaurants:read"


@pytest.fixture
def pair(postgres_url: str, tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    env = {**ENV, "OAUTH_SERVER_DATABASE_URL": postgres_url}
    a = ServerProcess(env, log=tmp_path / "a.log").start()
    b = ServerProcess(env, log=tmp_path / "b.log").start()
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


async def seeded_world(url: str, codes: int) -> list[SeededCode]:
    storage = open_storage(url, pool_size=2)
    try:
        await add_world(storage)
        return [await seed_code(storage, now=time.time(), scope=SCOPE) for _ in range(codes)]
    finally:
        await storage.close()


def exchange(seeded: SeededCode) -> dict[str, str]:
    return {
        "grant_type": "authorization_code",
        "code": seeded.code,
        "redirect_uri": REDIRECT,
        "code_verifier": seeded.verifier,
        "client_id": PUBLIC_ID,
    }


async def test_races_and_replay_across_two_instances(
    pair: tuple[ServerProcess, ServerProcess], postgres_url: str
) -> None:
    a, b = pair
    race_code, refresh_code, replay_code = await seeded_world(postgres_url, 3)
    async with httpx.AsyncClient(timeout=30) as http:

        async def token(server: ServerProcess, form: dict[str, str]) -> httpx.Response:
            return await http.post(f"{server.url}/oauth/token", data=form)

        def accepted(server: ServerProcess, access: str) -> bool:
            headers = {"Authorization": f"Bearer {access}"}
            return httpx.get(f"{server.url}/restaurent", headers=headers).status_code == 200

        servers = [a, b] * 10
        codes = await asyncio.gather(*(token(s, exchange(race_code)) for s in servers))
        assert sorted(r.status_code for r in codes) == [200] + [400] * 19, [
            r.text for r in codes if r.status_code != 400
        ]

        first = await token(a, exchange(refresh_code))
        assert first.status_code == 200, first.text
        form = {
            "grant_type": "refresh_token",
            "refresh_token": first.json()["refresh_token"],
            "client_id": PUBLIC_ID,
        }
        refreshes = await asyncio.gather(*(token(s, form) for s in servers))
        assert sorted(r.status_code for r in refreshes) == [200] + [400] * 19

        issued = await token(a, exchange(replay_code))
        access = issued.json()["access_token"]
        assert accepted(b, access)
        replay = await token(b, exchange(replay_code))
        assert replay.json()["error"] == "invalid_grant"
        # Instance b revoked it; instance a learns it from the change feed.
        await eventually(lambda: not accepted(a, access))
