"""A real server whose SQLite database another process locks: the SQLite counterpart of
``test_db_faults.py`` (which cuts PostgreSQL through a TCP proxy), with no fake in between.

The test process opens the database file with a connection of its own and takes the write
lock (``BEGIN EXCLUSIVE``), as an operator's stray ``sqlite3`` shell, a migration or a backup
tool holding the file would. Until it lets go, every write must answer ``503
temporarily_unavailable`` with ``Retry-After`` once SQLite's busy timeout (10 s) has run out —
never a 500, never a false success; reads (WAL readers do not wait for the writer) and liveness
keep working; and the server recovers by itself, with nothing of the refused writes done.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.faults import DEMO_CLIENT, ClientCredentials, assert_unavailable, create_client
from tests.helpers import DEMO_ID, bearer, eventually
from tests.process import ServerProcess

pytestmark = pytest.mark.slow

# SQLite's busy timeout (storage/sql/engine.py) is 10 s; a request waits at most about that.
# This is the test client's own timeout: an answer later than it is an httpx timeout error,
# and fails the test.
REQUEST_BOUND = 20.0


@dataclass
class Rig:
    server: ServerProcess
    path: Path
    opaque: ClientCredentials


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    path = tmp_path / "oauth.db"
    env = {
        "OAUTH_SERVER_DATABASE_URL": f"sqlite:///{path}",
        "OAUTH_SERVER_SECRET_KEY": "sqlite-faults-test-secret-key-0123456789",
        "OAUTH_SERVER_CACHE_SYNC_INTERVAL": "0.2",
    }
    server = ServerProcess(env, log=tmp_path / "server.log")
    try:
        server.start()
        opaque = create_client(server.env, "--token-format", "opaque", "--scope", "restaurent")
        yield Rig(server, path, opaque)
    finally:
        server.stop()


class WriteLock:
    """Another process's hold on the database's write lock."""

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(path, timeout=10, isolation_level=None)

    def __enter__(self) -> WriteLock:
        self._conn.execute("BEGIN EXCLUSIVE")
        return self

    def __exit__(self, *_exc: object) -> None:
        self._conn.execute("ROLLBACK")
        self._conn.close()


async def test_a_locked_sqlite_database_is_503_and_the_server_recovers(rig: Rig) -> None:
    async with httpx.AsyncClient(base_url=rig.server.url, timeout=REQUEST_BOUND) as http:

        async def issue(client: ClientCredentials) -> httpx.Response:
            return await http.post(
                "/oauth/token", data={"grant_type": "client_credentials"}, auth=client.auth
            )

        async def active(value: str, owner: ClientCredentials = rig.opaque) -> bool:
            # Each token introspected by its own client: introspecting another client's token
            # is a right (the client's `introspect` audiences) that neither client has.
            response = await http.post("/oauth/introspect", data={"token": value}, auth=owner.auth)
            assert response.status_code == 200, response.text
            return bool(response.json()["active"])

        opaque_token = (await issue(rig.opaque)).json()["access_token"]
        jwt = (await issue(DEMO_CLIENT)).json()["access_token"]
        assert await active(opaque_token)
        assert (await http.get("/readyz")).status_code == 200

        with WriteLock(rig.path):
            requests = {
                "opaque issuance": issue(rig.opaque),
                "opaque revocation": http.post(
                    "/oauth/revoke", data={"token": opaque_token}, auth=rig.opaque.auth
                ),
                "JWT revocation": http.post(
                    "/oauth/revoke", data={"token": jwt}, auth=DEMO_CLIENT.auth
                ),
                "REST update": http.patch(
                    f"/api/restaurants/{DEMO_ID}",
                    json={"Address": "Locked update"},
                    headers=bearer(jwt),
                ),
            }
            # Each within REQUEST_BOUND, the client's timeout.
            responses = await asyncio.gather(*requests.values())
            for name, response in zip(requests, responses, strict=True):
                assert_unavailable(name, response)
            # Reads and liveness do not wait for the write lock.
            assert (await http.get("/healthz")).status_code == 200
            assert (await http.get("/readyz")).status_code == 200
            assert await active(opaque_token)
            assert (await issue(DEMO_CLIENT)).status_code == 200  # a JWT is not stored

        async def recovered() -> bool:
            issued = await issue(rig.opaque)
            if issued.status_code != 200:
                assert_unavailable("opaque issuance while recovering", issued)
                return False
            return True

        await eventually(recovered, within=REQUEST_BOUND, interval=0.2)
        # Nothing that answered 503 happened: both tokens are still active, the restaurant
        # unchanged; and now the same requests succeed.
        assert await active(opaque_token)
        assert await active(jwt, DEMO_CLIENT)
        restaurant = await http.get(f"/api/restaurants/{DEMO_ID}", headers=bearer(jwt))
        assert restaurant.status_code == 200
        assert restaurant.json()["Address"] != "Locked update"
        revoked = await http.post(
            "/oauth/revoke", data={"token": opaque_token}, auth=rig.opaque.auth
        )
        assert revoked.status_code == 200
        assert not await active(opaque_token)
    output = rig.server.output()
    assert "Traceback" not in output
    assert " 500 " not in output
