"""``OAUTH_SERVER_DATABASE_POOL_SIZE`` is the most connections a process opens, on both
backends (issue 12 claim 5: pool size 10 gave 20 connections; issue 8 finding 9: SQLite had
SQLAlchemy's default 5 + 10 overflow and a 30 s wait). A checkout finding every connection
busy waits ``DATABASE_TIMEOUT`` (3 s), then fails — which a request answers with 503."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection

from oauth_server.clock import SystemClock
from oauth_server.config import Settings
from oauth_server.storage import open_storage
from oauth_server.storage.sql.engine import DATABASE_TIMEOUT
from oauth_server.web.app import create_app
from tests.conftest import _pg_admin, _pg_url, lifespan

POOL_SIZE = 3


@pytest.fixture
async def own_pg_database(pg_database: str) -> AsyncIterator[str]:
    """A PostgreSQL database nobody else connects to, so its sessions can be counted."""
    name = f"oauth_pool_{uuid.uuid4().hex[:12]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        yield _pg_url(name)
    finally:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _sessions(observer: asyncpg.Connection, database: str, *, besides: int) -> int:
    """Client sessions on ``database`` other than the observer's own and ``besides``."""
    count: int = await observer.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 "
        "AND backend_type = 'client backend' AND pid NOT IN (pg_backend_pid(), $2)",
        database,
        besides,
    )
    return count


async def test_a_full_pool_waits_then_fails_instead_of_opening_more(database_url: str) -> None:
    assert DATABASE_TIMEOUT == 3.0  # the README states this bound
    storage = open_storage(database_url, pool_size=POOL_SIZE)
    held: list[AsyncConnection] = []
    try:
        await storage.migrate()
        for _ in range(POOL_SIZE):
            conn = await storage.engine.connect()
            await conn.exec_driver_sql("SELECT 1")
            held.append(conn)
        with pytest.raises(PoolTimeout):
            held.append(await storage.engine.connect())  # (closed below if it was opened)
        pool = storage.engine.sync_engine.pool
        assert pool.checkedout() == POOL_SIZE  # type: ignore[attr-defined]
    finally:
        for conn in held:
            await conn.close()
        await storage.close()


@pytest.mark.postgres
async def test_sixty_concurrent_requests_open_at_most_pool_size_connections(
    own_pg_database: str,
) -> None:
    database = own_pg_database.rpartition("/")[2]
    settings = Settings(
        database_url=own_pg_database,
        database_pool_size=POOL_SIZE,
        secret_key="pool-test-secret-key-0123456789abcdef",
        cache_sync_interval=0.05,
    )
    app = create_app(settings, clock=SystemClock())
    observer = await asyncpg.connect(own_pg_database)
    locker = await asyncpg.connect(own_pg_database)
    try:
        async with lifespan(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                # Every restaurant read blocks on this lock while holding its connection, so
                # the pool stays at its high-water mark for seconds, long enough to count.
                transaction = locker.transaction()
                await transaction.start()
                await locker.execute("LOCK TABLE restaurants IN ACCESS EXCLUSIVE MODE")
                requests = asyncio.gather(
                    *(http.get(f"/api/restaurants/{uuid.uuid4().hex[:24]}") for _ in range(60))
                )
                counts = []
                while not requests.done():
                    counts.append(
                        await _sessions(observer, database, besides=locker.get_server_pid())
                    )
                    await asyncio.sleep(0.02)
                responses = await requests
                await transaction.rollback()
        # A request that met a busy pool or a blocked statement got 503, never 500.
        assert {r.status_code for r in responses} <= {404, 503}
        assert any(r.status_code == 503 for r in responses)
        for response in responses:
            if response.status_code == 503:
                assert response.json()["error"] == "temporarily_unavailable"
                assert "retry-after" in response.headers
        assert max(counts) == POOL_SIZE, counts
    finally:
        await observer.close()
        await locker.close()
