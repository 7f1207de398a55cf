"""Abuse control (issue 5): brute force on client secrets, runaway clients, shared counters."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis

from oauth_server.config import Settings
from oauth_server.errors import TooManyRequests
from oauth_server.oauth.ratelimit import RateLimiter, RateLimitPolicy
from oauth_server.web.api import FastRouter
from tests.conftest import lifespan, unavailable
from tests.helpers import basic

REDIS_URL = "redis://127.0.0.1:6379/0"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key="rate-limit-test-secret-key-0123456789",
        rate_limit_auth_failures_per_client="5/minute",
        rate_limit_auth_failures_per_address="8/minute",
        rate_limit_tokens_per_client="10/minute",
        rate_limit_introspections_per_client="3/minute",
        cache_sync_interval=0.05,
    )


async def attempt(client: httpx.AsyncClient, secret: str, *, ip: str = "") -> httpx.Response:
    return await client.post(
        "/oauth/token",
        content="grant_type=client_credentials",
        headers={**FORM, "Authorization": basic("admin", secret)},
    )


async def test_failed_authentications_lock_the_client_id(client: httpx.AsyncClient) -> None:
    for _ in range(5):
        assert (await attempt(client, "wrong")).status_code == 401
    locked = await attempt(client, "wrong")
    assert locked.status_code == 429
    assert locked.json()["error"] == "too_many_requests"
    assert 1 <= int(locked.headers["retry-after"]) <= 60
    assert locked.headers["cache-control"] == "no-store"
    # The correct secret is refused too: otherwise guessing would simply continue.
    assert (await attempt(client, "getroot")).status_code == 429


async def test_429_is_documented_where_it_is_answered(client: httpx.AsyncClient) -> None:
    # The OpenAPI document declared no 429 (Schemathesis: undocumented status code).
    document = (await client.get("/openapi.json")).json()
    for _ in range(5):
        assert (await attempt(client, "wrong")).status_code == 401
    for path in ("/oauth/token", "/oauth/introspect", "/oauth/revoke"):
        response = await client.post(
            path,
            content="grant_type=client_credentials&token=x",
            headers={**FORM, "Authorization": basic("admin", "getroot")},
        )
        assert response.status_code == 429, path
        assert "429" in document["paths"][path]["post"]["responses"], path


async def test_failures_from_one_address_are_limited(client: httpx.AsyncClient) -> None:
    # Different client ids, same address (the ASGI test client's): the per-address budget.
    statuses = []
    for index in range(10):
        response = await client.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": f"ghost{index}",
                "client_secret": "x",
            },
        )
        statuses.append(response.status_code)
    assert statuses[:8] == [401] * 8
    assert statuses[8:] == [429, 429]


async def test_unreadable_credentials_count_against_the_address(client: httpx.AsyncClient) -> None:
    for _ in range(8):
        response = await client.post(
            "/oauth/token",
            content="grant_type=client_credentials",
            headers={**FORM, "Authorization": "Basic !!!"},
        )
        assert response.status_code == 401
    response = await client.post(
        "/oauth/token",
        content="grant_type=client_credentials",
        headers={**FORM, "Authorization": "Basic !!!"},
    )
    assert response.status_code == 429


async def test_token_requests_per_client(client: httpx.AsyncClient) -> None:
    statuses = [(await attempt(client, "getroot")).status_code for _ in range(12)]
    assert statuses == [200] * 10 + [429, 429]


async def test_introspections_per_client(client: httpx.AsyncClient) -> None:
    token = (await attempt(client, "getroot")).json()["access_token"]
    statuses = [
        (
            await client.post(
                "/oauth/introspect",
                data={"token": token},
                headers={"Authorization": basic("admin", "getroot")},
            )
        ).status_code
        for _ in range(4)
    ]
    assert statuses == [200, 200, 200, 429]


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    prefix = f"oauth-test-{uuid.uuid4().hex[:8]}"
    connection = aioredis.from_url(REDIS_URL)
    try:
        await connection.ping()
    except (OSError, aioredis.ConnectionError) as exc:
        await connection.aclose()
        unavailable(f"Redis unreachable at {REDIS_URL}: {exc}")
    try:
        yield prefix
    finally:
        keys = [key async for key in connection.scan_iter(match=f"{prefix}*")]
        if keys:
            await connection.delete(*keys)
        await connection.aclose()


async def test_redis_counters_are_shared_between_instances(redis_prefix: str) -> None:
    policy = RateLimitPolicy(auth_failures_per_client="3/minute")
    first = RateLimiter(policy, redis_url=REDIS_URL, key_prefix=redis_prefix)
    second = RateLimiter(policy, redis_url=REDIS_URL, key_prefix=redis_prefix)
    assert first.shared
    for limiter in (first, second, first):
        await limiter.before_authentication("shared-client", "10.0.0.1")
        await limiter.authentication_failed("shared-client", "10.0.0.1")
    with pytest.raises(TooManyRequests):
        await second.before_authentication("shared-client", "10.0.0.2")
    await first.close()
    await second.close()


async def test_an_unreachable_redis_fails_open() -> None:
    limiter = RateLimiter(
        RateLimitPolicy(tokens_per_client="1/minute"), redis_url="redis://127.0.0.1:1/0"
    )
    for _ in range(3):  # would be limited after one request if counters worked
        await limiter.token_requested("c")
        await limiter.authentication_failed("c", "10.0.0.1")
        await limiter.before_authentication("c", "10.0.0.1")
    await limiter.close()


async def test_app_with_redis_limits(database_url: str, redis_prefix: str) -> None:
    settings = Settings(
        database_url=database_url,
        secret_key="rate-limit-test-secret-key-0123456789",
        redis_url=REDIS_URL,
        redis_key_prefix=redis_prefix,
        rate_limit_auth_failures_per_client="2/minute",
    )
    apps: list[FastRouter] = []
    from oauth_server.web.app import create_app

    for _ in range(2):
        apps.append(create_app(settings))
    async with lifespan(apps[0]), lifespan(apps[1]):
        clients = [
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
            for app in apps
        ]
        try:
            assert (await attempt(clients[0], "bad")).status_code == 401
            assert (await attempt(clients[1], "bad")).status_code == 401
            assert (await attempt(clients[0], "getroot")).status_code == 429
            assert (await attempt(clients[1], "getroot")).status_code == 429
        finally:
            for http in clients:
                await http.aclose()


def test_bad_limit_settings_are_refused() -> None:
    from oauth_server.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="RATE_LIMIT_TOKENS_PER_CLIENT"):
        load_settings(rate_limit_tokens_per_client="lots")
    with pytest.raises(ConfigError, match="REDIS_URL"):
        load_settings(redis_url="http://x")


async def test_hitting_a_limit_is_audited_once_per_minute(
    app: FastRouter, client: httpx.AsyncClient
) -> None:
    for _ in range(8):
        await attempt(client, "wrong")
    trail = app.state.services.audit
    await trail.flush()
    events = await app.state.services.storage.audit.recent(limit=100)
    limited = [json.loads(e.data) for e in events if e.kind == "rate_limited"]
    assert len(limited) == 1
    assert limited[0]["client_id"] == "admin"
    assert limited[0]["reason"] == "auth-failures-client"
    assert "5" in limited[0]["limit"]
