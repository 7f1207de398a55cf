"""A real server whose PostgreSQL goes away: through a TCP proxy the test cuts (the database is
down: connections refused and reset) or holds (a partition: connections open, nothing moves).

What must hold: everything that needs the database answers ``503 temporarily_unavailable`` with
``Retry-After`` — never a 500, never a false success — within a bounded time; liveness stays up
while readiness goes down; what does not need the database keeps working; and the server
recovers on its own once the database is back. Plus graceful shutdown: SIGTERM lets the requests
in flight finish.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.faults import DEMO_CLIENT, ClientCredentials, assert_unavailable, create_client
from tests.helpers import DEMO_ID, bearer, eventually
from tests.process import ServerProcess
from tests.tcpproxy import TcpProxy

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

# What "bounded" means here: every request answers within this, database or not. It is the
# test client's own timeout (see ``http``), so an answer later than this is an httpx timeout
# error and fails the test; the server's own bound is DATABASE_TIMEOUT (3 s) per wait.
REQUEST_BOUND = 10.0
# How long the server may take to notice the database is back, by itself.
RECOVERY_BOUND = 10.0


@dataclass
class Rig:
    server: ServerProcess
    proxy: TcpProxy
    opaque: ClientCredentials
    """A client with opaque tokens: issuing, introspecting and revoking them needs the database."""
    unused: ClientCredentials
    """A JWT client the server has not looked up yet (so not in its client cache)."""
    direct_url: str


@pytest.fixture
def proxy(postgres_url: str) -> Iterator[TcpProxy]:
    url = make_url(postgres_url)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as running:
        yield running


@pytest.fixture
def rig(postgres_url: str, proxy: TcpProxy, tmp_path: Path) -> Iterator[Rig]:
    proxied = make_url(postgres_url).set(port=proxy.port).render_as_string(hide_password=False)
    env = {
        "OAUTH_SERVER_DATABASE_URL": proxied,
        "OAUTH_SERVER_SECRET_KEY": "db-faults-test-secret-key-0123456789",
        "OAUTH_SERVER_CACHE_SYNC_INTERVAL": "0.2",
    }
    server = ServerProcess(env, log=tmp_path / "server.log")
    try:
        server.start()
        cli_env = {**server.env, "OAUTH_SERVER_DATABASE_URL": postgres_url}
        opaque = create_client(cli_env, "--token-format", "opaque", "--scope", "restaurent")
        unused = create_client(cli_env, "--scope", "restaurent")
        yield Rig(server, proxy, opaque, unused, postgres_url)
    finally:
        server.stop()
        proxy.release()  # a held proxy would keep the server's shutdown waiting


@pytest.fixture
async def http(rig: Rig) -> AsyncIterator[httpx.AsyncClient]:
    # The bound each request must answer within: a later answer raises httpx.TimeoutException.
    async with httpx.AsyncClient(base_url=rig.server.url, timeout=REQUEST_BOUND) as client:
        yield client


async def issue(http: httpx.AsyncClient, client: ClientCredentials) -> httpx.Response:
    return await http.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=client.auth
    )


async def token(http: httpx.AsyncClient, client: ClientCredentials) -> str:
    response = await issue(http, client)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def introspect(http: httpx.AsyncClient, client: ClientCredentials, value: str) -> bool:
    response = await http.post("/oauth/introspect", data={"token": value}, auth=client.auth)
    assert response.status_code == 200, response.text
    return bool(response.json()["active"])


async def needs_database(
    http: httpx.AsyncClient, rig: Rig, *, opaque_token: str, jwt: str, api_jwt: str
) -> dict[str, httpx.Response]:
    """Every kind of request that cannot be answered without the database, all at once (the
    revocations of ``opaque_token`` and ``jwt``; the restaurants API called with ``api_jwt``);
    each must answer within REQUEST_BOUND (the client's timeout)."""
    requests = {
        "opaque issuance": issue(http, rig.opaque),
        "issuance for a client not in the cache": issue(http, rig.unused),
        "opaque revocation": http.post(
            "/oauth/revoke", data={"token": opaque_token}, auth=rig.opaque.auth
        ),
        "JWT revocation": http.post("/oauth/revoke", data={"token": jwt}, auth=DEMO_CLIENT.auth),
        "seed update": http.get(
            "/restaurentUpdate",
            params={"id": DEMO_ID, "Name": "Seed update"},
            headers=bearer(api_jwt),
        ),
        "REST update": http.patch(
            f"/api/restaurants/{DEMO_ID}",
            json={"Address": "REST update"},
            headers=bearer(api_jwt),
        ),
        "REST create": http.post(
            "/api/restaurants", json={"Name": "New", "Address": "Here"}, headers=bearer(api_jwt)
        ),
        "REST read": http.get(f"/api/restaurants/{DEMO_ID}", headers=bearer(api_jwt)),
        "readiness": http.get("/readyz"),
    }

    async def bounded(name: str, request: Awaitable[httpx.Response]) -> httpx.Response:
        try:
            return await request
        except httpx.TimeoutException as error:
            raise AssertionError(f"{name}: no answer within {REQUEST_BOUND} s") from error

    names = list(requests)
    responses = await asyncio.gather(*(bounded(name, requests[name]) for name in names))
    return dict(zip(names, responses, strict=True))


async def works_without_database(http: httpx.AsyncClient, jwt: str) -> None:
    """What is served from memory: liveness, the JWKS, metadata, JWT issuance for a client in
    the cache (keys are in memory), and JWT introspection (verified locally); each within
    REQUEST_BOUND (the client's timeout)."""
    assert (await http.get("/healthz")).status_code == 200
    assert (await http.get("/.well-known/jwks.json")).json()["keys"]
    assert (await http.get("/.well-known/oauth-authorization-server")).status_code == 200
    fresh = await token(http, DEMO_CLIENT)
    assert await introspect(http, DEMO_CLIENT, fresh)
    assert await introspect(http, DEMO_CLIENT, jwt)


async def recovers(http: httpx.AsyncClient, rig: Rig) -> float:
    async def ready() -> bool:
        readiness = await http.get("/readyz")
        if readiness.status_code != 200:
            assert_unavailable("readiness while recovering", readiness)
            return False
        issued = await issue(http, rig.opaque)
        if issued.status_code != 200:
            assert_unavailable("opaque issuance while recovering", issued)
            return False
        return True

    return await eventually(ready, within=RECOVERY_BOUND, interval=0.2)


async def recorded(rig: Rig) -> dict[str, int]:
    """What the database holds of the writes the outage requests attempt (read directly)."""
    conn = await asyncpg.connect(rig.direct_url)
    try:
        return {
            "revoked opaque tokens": await conn.fetchval(
                "SELECT count(*) FROM opaque_tokens WHERE revoked_at IS NOT NULL"
            ),
            "revoked JWTs": await conn.fetchval("SELECT count(*) FROM revoked_tokens"),
            "updated": await conn.fetchval(
                "SELECT count(*) FROM restaurants WHERE name = 'Seed update' "
                "OR address = 'REST update'"
            ),
            "created": await conn.fetchval("SELECT count(*) FROM restaurants WHERE name = 'New'"),
        }
    finally:
        await conn.close()


async def cached_opaque_token_is_not_answered_from_memory(
    http: httpx.AsyncClient, rig: Rig, opaque_token: str
) -> None:
    """Issue 12 claim 1: a validated opaque token stays in the cache, but once the change feed
    cannot be read (a revocation made elsewhere could not be heard of) it is checked at the
    database again — 503 — instead of introspecting as active from memory."""

    async def unavailable() -> bool:
        response = await http.post(
            "/oauth/introspect", data={"token": opaque_token}, auth=rig.opaque.auth
        )
        if response.status_code == 200 and response.json()["active"] is True:
            return False  # the feed was read moments ago: the cache may still answer
        assert_unavailable("introspection of a cached opaque token", response)
        return True

    await eventually(unavailable, within=REQUEST_BOUND)


async def outage_then_recovery(http: httpx.AsyncClient, rig: Rig, *, fault: str) -> None:
    opaque_token = await token(http, rig.opaque)
    jwt = await token(http, DEMO_CLIENT)
    api_jwt = await token(http, DEMO_CLIENT)
    tokens = {"opaque_token": opaque_token, "jwt": jwt, "api_jwt": api_jwt}
    assert await introspect(http, rig.opaque, opaque_token)
    assert (await http.get("/readyz")).status_code == 200

    if fault == "cut":
        rig.proxy.cut()
    else:
        rig.proxy.hold()
    await cached_opaque_token_is_not_answered_from_memory(http, rig, opaque_token)
    # Twice: the first round meets the pooled connections, the second what replaced them.
    for _ in range(2):
        for name, response in (await needs_database(http, rig, **tokens)).items():
            assert_unavailable(name, response)
        await works_without_database(http, jwt)

    if fault == "cut":
        rig.proxy.restore()
    else:
        rig.proxy.release()
    await recovers(http, rig)

    # Nothing that answered 503 happened.
    nothing = {"revoked opaque tokens": 0, "revoked JWTs": 0, "updated": 0, "created": 0}
    assert await recorded(rig) == nothing
    assert await introspect(http, rig.opaque, opaque_token)
    assert await introspect(http, DEMO_CLIENT, jwt)
    # And everything works again, in full.
    for name, response in (await needs_database(http, rig, **tokens)).items():
        assert response.status_code < 300, f"{name} after recovery: {response.text}"
    assert await recorded(rig) == {
        **nothing,
        "revoked opaque tokens": 1,
        "revoked JWTs": 1,
        "updated": 1,
        "created": 1,
    }
    assert not await introspect(http, rig.opaque, opaque_token)
    assert not await introspect(http, DEMO_CLIENT, jwt)
    assert "Traceback" not in rig.server.output()


async def test_database_down_is_503_and_the_server_recovers_by_itself(
    rig: Rig, http: httpx.AsyncClient
) -> None:
    await outage_then_recovery(http, rig, fault="cut")


async def test_database_partition_is_503_within_bounded_time(
    rig: Rig, http: httpx.AsyncClient
) -> None:
    await outage_then_recovery(http, rig, fault="hold")


@pytest.mark.parametrize("fault", ["cut", "hold"])
async def test_sustained_load_during_an_outage_gets_503_in_bounded_time(
    rig: Rig, http: httpx.AsyncClient, fault: str
) -> None:
    """More concurrent database requests than the pool has connections, for several seconds: none
    hangs past the bound (the client's timeout), none gets anything but 503."""
    jwt = await token(http, DEMO_CLIENT)
    await token(http, rig.opaque)  # the client is in the cache
    statuses: list[int] = []

    async def worker(number: int, until: float) -> None:
        while time.monotonic() < until:
            if number % 2:
                response = await issue(http, rig.opaque)
            else:
                response = await http.get(
                    "/restaurentUpdate",
                    params={"id": DEMO_ID, "Name": f"n{number}"},
                    headers=bearer(jwt),
                )
            assert_unavailable(f"request of worker {number}", response)
            statuses.append(response.status_code)

    rig.proxy.cut() if fault == "cut" else rig.proxy.hold()
    until = time.monotonic() + 6
    await asyncio.gather(*(worker(number, until) for number in range(40)))
    assert len(statuses) >= 40
    rig.proxy.restore() if fault == "cut" else rig.proxy.release()
    await recovers(http, rig)


def unread_bytes(port: int) -> list[int]:
    """The bytes received and not yet read by the server on each of its established
    connections on ``port`` (Linux: the rx_queue column of /proc/net/tcp)."""
    queues = []
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        if not table.exists():
            continue
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            local, state, tx_rx = fields[1], fields[3], fields[4]
            if int(local.rsplit(":", 1)[1], 16) == port and state == "01":  # ESTABLISHED
                queues.append(int(tx_rx.split(":")[1], 16))
    return queues


async def test_sigterm_lets_requests_in_flight_finish(rig: Rig) -> None:
    """Requests the server has read when SIGTERM arrives are answered (200, not a reset) before
    it exits; new connections are refused meanwhile. The database is held so that the requests
    are certainly in flight, then released after the signal."""
    server, proxy = rig.server, rig.proxy
    count = 32
    clients = [httpx.AsyncClient(base_url=server.url, timeout=60) for _ in range(count)]
    try:
        for client in clients:  # one open keep-alive connection each, and the client cached
            await token(client, rig.opaque)
        proxy.hold()
        sent: list[str] = []

        async def trace(event: str, _info: object) -> None:
            if event == "http11.send_request_body.complete":
                sent.append(event)

        in_flight = [
            asyncio.ensure_future(
                client.post(
                    "/oauth/token",
                    data={"grant_type": "client_credentials"},
                    auth=rig.opaque.auth,
                    extensions={"trace": trace},
                )
            )
            for client in clients
        ]

        def all_read_by_the_server() -> bool:
            unread = unread_bytes(server.port)
            return len(sent) == count and len(unread) >= count and not any(unread)

        await eventually(all_read_by_the_server, within=10)
        assert not any(request.done() for request in in_flight)

        assert server.process is not None
        os.killpg(server.process.pid, signal.SIGTERM)

        async def refuses_new_connections() -> bool:
            try:
                async with httpx.AsyncClient(base_url=server.url, timeout=2) as fresh:
                    await fresh.get("/healthz")
            except httpx.ConnectError:
                return True
            except httpx.TransportError:
                # Connected to the listening socket an instant before it closed, and then
                # dropped unanswered (never accepted by the server): poll again.
                return False
            return False

        await eventually(refuses_new_connections, within=5)
        assert server.process.poll() is None, "exited with requests in flight"
        assert not any(request.done() for request in in_flight)

        proxy.release()
        responses = await asyncio.gather(*in_flight)
        assert [r.status_code for r in responses] == [200] * count, [r.text for r in responses]
        tokens = [str(r.json()["access_token"]) for r in responses]
        assert all(r.headers.get("connection") == "close" for r in responses)
        returncode = await asyncio.to_thread(server.process.wait, 20)
        assert returncode in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in server.output()
    finally:
        for client in clients:
            await client.aclose()

    # What was acknowledged during shutdown was committed: a new process accepts it all.
    server.start()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        for value in tokens:
            assert await introspect(http, rig.opaque, value)
