"""Crash safety: SIGKILL a real server under load, restart it on the same database, and check
that everything it acknowledged is there.

Concurrent clients issue opaque tokens and JWTs, revoke some of the tokens they got, and update
restaurants — each worker owns one restaurant, so "the last acknowledged value" is exact. The
process group is killed mid-load. After a restart: every token whose issuance got a 200 is
still valid unless its revocation got a 200, in which case it is rejected; every restaurant
holds its last acknowledged value. Requests in flight at the kill may go either way: the one
update a worker had in flight is the only other value its restaurant may hold, and a token
whose revocation was in flight is not checked.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.faults import DEMO_CLIENT, ClientCredentials, create_client
from tests.helpers import eventually
from tests.process import ServerProcess

pytestmark = pytest.mark.slow

WORKERS = 24
MIN_LOAD_SECONDS = 2.0


@dataclass
class Ledger:
    """What one worker was told, and what it had in flight when the server died."""

    number: int
    restaurant_id: str
    tokens: dict[str, ClientCredentials] = field(default_factory=dict)
    """Every token whose issuance was acknowledged, with the client it belongs to."""
    revoked: set[str] = field(default_factory=set)
    """Tokens whose revocation was acknowledged."""
    revoking: str | None = None
    """A token whose revocation was sent but not acknowledged."""
    name: str = ""
    """The restaurant's last acknowledged name."""
    naming: str | None = None
    """A name sent but not acknowledged."""
    updates: int = 0
    unexpected: list[str] = field(default_factory=list)
    """Answers other than 200 while the server was up (there should be none)."""
    sent_at: float = 0.0
    """When the worker's latest request went out."""
    ended_by: str = ""


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(
        {
            "OAUTH_SERVER_DATABASE_URL": database_url,
            "OAUTH_SERVER_SECRET_KEY": "crash-safety-test-secret-key-0123456789",
            # The check presents every revoked token to the API from one address: that is a
            # ledger, not an attack, so the per-address budget of refused tokens is lifted.
            "OAUTH_SERVER_RATE_LIMIT_BEARER_FAILURES_PER_ADDRESS": "1000000/minute",
        },
        log=tmp_path / "server.log",
    )
    try:
        yield process.start()
    finally:
        process.stop(signal.SIGKILL)


async def work(
    ledger: Ledger,
    http: httpx.AsyncClient,
    clients: tuple[ClientCredentials, ClientCredentials],
    stop: asyncio.Event,
) -> None:
    rng = random.Random(ledger.number)
    update_token = ""
    step = 0
    try:
        while not stop.is_set():
            step += 1
            client = clients[step % 2]  # opaque and JWT in turn
            ledger.sent_at = time.monotonic()
            issued = await http.post(
                "/oauth/token", data={"grant_type": "client_credentials"}, auth=client.auth
            )
            if issued.status_code != 200:
                ledger.unexpected.append(f"issuance: {issued.status_code} {issued.text}")
                continue
            value = str(issued.json()["access_token"])
            ledger.tokens[value] = client
            if not update_token:
                update_token = value  # never revoked: the worker's key to its restaurant

            if step % 3 == 0:
                live = [t for t in ledger.tokens if t not in ledger.revoked and t != update_token]
                ledger.revoking = rng.choice(live)
                ledger.sent_at = time.monotonic()
                revoked = await http.post(
                    "/oauth/revoke",
                    data={"token": ledger.revoking},
                    auth=ledger.tokens[ledger.revoking].auth,
                )
                if revoked.status_code != 200:
                    ledger.unexpected.append(f"revocation: {revoked.status_code} {revoked.text}")
                    continue  # stays in doubt
                ledger.revoked.add(ledger.revoking)
                ledger.revoking = None

            ledger.naming = f"worker {ledger.number} step {step}"
            ledger.sent_at = time.monotonic()
            updated = await http.get(
                "/restaurentUpdate",
                params={"id": ledger.restaurant_id, "Name": ledger.naming},
                headers={"Authorization": f"Bearer {update_token}"},
            )
            if updated.status_code != 200:
                ledger.unexpected.append(f"update: {updated.status_code} {updated.text}")
                continue  # stays in doubt
            ledger.name, ledger.naming = ledger.naming, None
            ledger.updates += 1
        ledger.ended_by = "stop"
    except httpx.TransportError as exc:  # the server is gone
        ledger.ended_by = type(exc).__name__


async def check_token(
    http: httpx.AsyncClient, value: str, client: ClientCredentials, *, revoked: bool
) -> str | None:
    """Introspection and the restaurants API must agree with the ledger; a mismatch, described."""
    introspection = await http.post("/oauth/introspect", data={"token": value}, auth=client.auth)
    assert introspection.status_code == 200, introspection.text
    active = introspection.json()["active"]
    api = await http.get("/restaurent", headers={"Authorization": f"Bearer {value}"})
    expected = (False, 401) if revoked else (True, 200)
    if (active, api.status_code) != expected:
        kind = "JWT" if value.count(".") == 2 else "opaque"
        state = "revoked" if revoked else "live"
        return f"{state} {kind} token: active={active}, API {api.status_code}"
    return None


async def test_sigkill_under_load_loses_nothing_acknowledged(server: ServerProcess) -> None:
    opaque = await asyncio.to_thread(
        create_client, server.env, "--token-format", "opaque", "--scope", "restaurent"
    )
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as http:
        admin = await http.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=DEMO_CLIENT.auth
        )
        headers = {"Authorization": f"Bearer {admin.json()['access_token']}"}
        ledgers = []
        for number in range(WORKERS):
            created = await http.post(
                "/api/restaurants",
                json={"Name": f"worker {number}", "Address": "Crash Street"},
                headers=headers,
            )
            assert created.status_code == 201, created.text
            ledgers.append(Ledger(number, created.json()["_id"]["$oid"], name=f"worker {number}"))

    # Load, then the kill.
    stop = asyncio.Event()
    workers = [
        httpx.AsyncClient(base_url=server.url, timeout=10, limits=httpx.Limits(max_connections=1))
        for _ in range(WORKERS)
    ]
    started = time.monotonic()
    tasks = [
        asyncio.ensure_future(work(ledger, http, (opaque, DEMO_CLIENT), stop))
        for ledger, http in zip(ledgers, workers, strict=True)
    ]

    async def loaded() -> bool:
        assert not any(task.done() for task in tasks), "a worker stopped before the kill"
        return time.monotonic() - started >= MIN_LOAD_SECONDS and all(
            ledger.updates >= 3 and ledger.revoked for ledger in ledgers
        )

    try:
        await eventually(loaded, within=20)
        killed_at = time.monotonic()
        await asyncio.to_thread(server.stop, signal.SIGKILL)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 15)
    finally:
        stop.set()
        for client in workers:
            await client.aclose()
    assert [ledger.unexpected for ledger in ledgers] == [[]] * WORKERS
    # The kill came under load: requests sent before it were cut off unanswered.
    in_flight = sum(ledger.ended_by != "stop" and ledger.sent_at < killed_at for ledger in ledgers)
    assert in_flight >= 1

    # Restart on the same database; check everything that was acknowledged.
    await asyncio.to_thread(server.start)
    tokens = {value: ledger for ledger in ledgers for value in ledger.tokens}
    revoked = {value for ledger in ledgers for value in ledger.revoked}
    in_doubt = {ledger.revoking for ledger in ledgers} - {None}
    async with httpx.AsyncClient(
        base_url=server.url, timeout=20, limits=httpx.Limits(max_connections=16)
    ) as http:
        gate = asyncio.Semaphore(16)

        async def check(value: str, ledger: Ledger) -> str | None:
            async with gate:
                client = ledger.tokens[value]
                return await check_token(http, value, client, revoked=value in revoked)

        mismatches = await asyncio.gather(
            *(check(value, ledger) for value, ledger in tokens.items() if value not in in_doubt)
        )
        wrong = [mismatch for mismatch in mismatches if mismatch is not None]
        assert not wrong, f"{len(wrong)} of {len(tokens)} tokens wrong, e.g. {wrong[:5]}"

        admin = await http.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=DEMO_CLIENT.auth
        )
        headers = {"Authorization": f"Bearer {admin.json()['access_token']}"}
        for ledger in ledgers:
            response = await http.get(f"/api/restaurants/{ledger.restaurant_id}", headers=headers)
            assert response.status_code == 200, response.text
            allowed = {ledger.name, ledger.naming} - {None}
            assert response.json()["Name"] in allowed, (ledger.number, ledger.name, ledger.naming)

    # The run was not vacuous: plenty was acknowledged, of both kinds, and revoked.
    assert len(tokens) >= 3 * WORKERS
    assert sum(value.count(".") == 2 for value in tokens) >= WORKERS
    assert len(revoked) >= WORKERS
    print(
        f"{len(tokens)} tokens acknowledged, {len(revoked)} revoked, "
        f"{sum(ledger.updates for ledger in ledgers)} updates; "
        f"{in_flight} of {WORKERS} workers had a request in flight at the kill"
    )
