"""Abuse control (issues 5, 8, 13): brute force on client secrets per (client, address) with a
per-client ceiling, refused bearer tokens per address, runaway clients, shared counters, the
audit of refusals, trusted proxies — in process, and against real server processes."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from oauth_server.clock import FrozenClock
from oauth_server.config import Settings
from oauth_server.errors import TooManyRequests
from oauth_server.oauth.ratelimit import RateLimiter, RateLimitPolicy
from oauth_server.web.api import FastRouter
from oauth_server.web.app import create_app
from tests.conftest import lifespan, unavailable
from tests.helpers import DEMO_ID, FORM, app_services, basic, bearer, eventually, seed_token
from tests.process import ServerProcess, free_port

REDIS_URL = "redis://127.0.0.1:6379/0"
SECRET_KEY = "rate-limit-test-secret-key-0123456789"
# A protected route of the restaurants API (needs a write scope; `restaurent` has it).
PROTECTED = f"/restaurentUpdate?id={DEMO_ID}&Name=x"


pytestmark = pytest.mark.settings(
    secret_key=SECRET_KEY,
    rate_limit_auth_failures_per_client_address="5/minute",
    rate_limit_auth_failures_per_client="12/minute",
    rate_limit_auth_failures_per_address="8/minute",
    rate_limit_bearer_failures_per_address="4/minute",
    rate_limit_tokens_per_client="10/minute",
    rate_limit_introspections_per_client="3/minute",
)


def client_at(app: FastRouter, address: str) -> httpx.AsyncClient:
    """An HTTP client of the app whose requests come from ``address``."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def attempt(
    client: httpx.AsyncClient, secret: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    return await client.post(
        "/oauth/token",
        content="grant_type=client_credentials",
        headers={**FORM, "Authorization": basic("admin", secret), **(headers or {})},
    )


async def rate_limited_events(app: FastRouter) -> list[dict[str, Any]]:
    await app_services(app).audit.flush()
    events = await app_services(app).storage.audit.recent(limit=1000)
    return [json.loads(e.data) for e in events if e.kind == "rate_limited"]


async def test_failures_lock_the_client_out_from_that_address_only(app: FastRouter) -> None:
    # Issue 8 finding 3: wrong secrets from one address locked the client out everywhere.
    async with client_at(app, "127.0.0.1") as attacker, client_at(app, "127.0.0.2") as owner:
        for _ in range(5):
            assert (await attempt(attacker, "wrong")).status_code == 401
        locked = await attempt(attacker, "wrong")
        assert locked.status_code == 429
        assert locked.json()["error"] == "too_many_requests"
        assert 1 <= int(locked.headers["retry-after"]) <= 60
        assert locked.headers["cache-control"] == "no-store"
        # The correct secret is refused too from the locked (client, address) pair: otherwise
        # guessing would simply continue.
        correct = await attempt(attacker, "getroot")
        assert correct.status_code == 429
        assert 1 <= int(correct.headers["retry-after"]) <= 60
        # The client keeps working from its own address, introspection included.
        issued = await attempt(owner, "getroot")
        assert issued.status_code == 200
        introspected = await owner.post(
            "/oauth/introspect",
            data={"token": issued.json()["access_token"]},
            headers={"Authorization": basic("admin", "getroot")},
        )
        assert introspected.status_code == 200
        assert introspected.json()["active"] is True
    [event] = await rate_limited_events(app)
    assert event == {
        "reason": "auth-failures-client-address",
        "limit": "5 per 1 minute",
        "ip": "127.0.0.1",
        "client_id": "admin",
    }


async def test_a_distributed_attack_reaches_the_per_client_ceiling(app: FastRouter) -> None:
    # 4 addresses x 3 failures: under every per-address budget, but 12 for the client id.
    for index in range(2, 6):
        async with client_at(app, f"127.0.0.{index}") as http:
            for _ in range(3):
                assert (await attempt(http, "wrong")).status_code == 401
    async with client_at(app, "127.0.0.9") as fresh:
        refused = await attempt(fresh, "getroot")
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        # Other clients are not affected.
        response = await fresh.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=("nobody", "x")
        )
        assert response.status_code == 401
    events = await rate_limited_events(app)
    assert events == [
        {"reason": "auth-failures-client", "limit": "12 per 1 minute", "client_id": "admin"}
    ]


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
    assert "429" in document["paths"]["/restaurentUpdate"]["get"]["responses"]


async def unknown_client_attempts(client: httpx.AsyncClient, count: int) -> list[int]:
    """The statuses of ``count`` token requests from one address (the ASGI test client's), each
    for another unknown client id."""
    statuses = []
    for index in range(count):
        response = await client.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": f"ghost{index}",
                "client_secret": "x",
            },
        )
        statuses.append(response.status_code)
    return statuses


async def test_failures_from_one_address_are_limited(client: httpx.AsyncClient) -> None:
    # Different client ids, same address: the per-address budget.
    statuses = await unknown_client_attempts(client, 10)
    assert statuses[:8] == [401] * 8
    assert statuses[8:] == [429, 429]


@pytest.mark.settings(rate_limits=False)
async def test_rate_limits_off_enforce_nothing(client: httpx.AsyncClient) -> None:
    """README: ``OAUTH_SERVER_RATE_LIMITS=false`` turns the limits off: the same ten failures
    from one address (the per-address budget here is 8), then more tokens for one client than
    its budget of 10, all answered as if no limit existed."""
    assert await unknown_client_attempts(client, 10) == [401] * 10
    for _ in range(12):
        response = await client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": basic("admin", "getroot")},
        )
        assert response.status_code == 200


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


async def test_ipv6_addresses_are_counted_by_their_64(app: FastRouter) -> None:
    # Issue 8 finding 8: one host picks any address of its /64.
    for index in range(8):
        async with client_at(app, f"2001:db8:0:1::{index + 1:x}") as http:
            response = await http.post(
                "/oauth/token", data={"grant_type": "client_credentials"}, auth=(f"g{index}", "x")
            )
            assert response.status_code == 401
    async with client_at(app, "2001:db8:0:1:ffff::1") as same_64:
        response = await same_64.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=("g9", "x")
        )
        assert response.status_code == 429
    async with client_at(app, "2001:db8:0:2::1") as next_64:
        assert (await attempt(next_64, "getroot")).status_code == 200
    [event] = await rate_limited_events(app)
    assert event["reason"] == "auth-failures-address"
    assert event["ip"] == "2001:db8:0:1::/64"


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


async def test_refused_bearer_tokens_are_limited_per_address(app: FastRouter) -> None:
    # Issue 8 finding 9: each random opaque token or garbage JWT could cost a database read.
    garbage = ["random-opaque-token-0123456789", "eyJhbGciOiJFUzI1NiJ9.e30.c2ln"] * 2
    async with client_at(app, "127.0.0.1") as attacker, client_at(app, "127.0.0.2") as owner:
        token = await seed_token(owner)
        for value in garbage:
            assert (await attacker.get(PROTECTED, headers=bearer(value))).status_code == 401
        limited = await attacker.get(PROTECTED, headers=bearer("one-more-random-token"))
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert limited.headers["cache-control"] == "no-store"
        assert limited.json()["error"] == "too_many_requests"
        challenge = limited.headers["www-authenticate"]
        assert challenge.startswith('Bearer realm="restaurants"')
        assert "error=" not in challenge  # RFC 6750 defines no error code for this
        # Refused before the token is looked at: a valid one too, from that address.
        refused = await attacker.get(PROTECTED, headers=bearer(token))
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        # Another address is not affected: its garbage is a 401, its token works.
        assert (await owner.get(PROTECTED, headers=bearer("random"))).status_code == 401
        assert (await owner.get(PROTECTED, headers=bearer(token))).status_code == 200
        # The public view (no token) is not a bearer request.
        assert (await attacker.get("/restaurent")).status_code == 200
    [event] = await rate_limited_events(app)
    assert event == {
        "reason": "bearer-failures-address",
        "limit": "4 per 1 minute",
        "ip": "127.0.0.1",
    }


async def test_valid_tokens_cost_the_limiter_nothing(
    app: FastRouter, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    limiter = app_services(app).limiter
    calls: list[str] = []

    async def counted_failure(address: str) -> None:
        calls.append(address)

    def no_check(address: str) -> None:
        raise AssertionError("checked a bearer request while no address is locked out")

    monkeypatch.setattr(limiter, "bearer_failed", counted_failure)
    monkeypatch.setattr(limiter, "before_bearer", no_check)
    token = await seed_token(client)
    for _ in range(5):
        assert (await client.get(PROTECTED, headers=bearer(token))).status_code == 200
    assert calls == []
    assert (await client.get(PROTECTED, headers=bearer("random"))).status_code == 401
    assert calls == ["127.0.0.1"]


async def test_hitting_a_limit_is_audited_once_per_minute_per_key(
    app: FastRouter, clock: FrozenClock
) -> None:
    # Issue 13: this test never moved the clock, so "once per minute" was never shown.
    def events_for(events: list[dict[str, Any]], ip: str) -> list[dict[str, Any]]:
        return [e for e in events if e.get("ip") == ip]

    async with client_at(app, "127.0.0.1") as first, client_at(app, "127.0.0.2") as second:
        for _ in range(5):
            assert (await attempt(first, "wrong")).status_code == 401
        for _ in range(3):
            assert (await attempt(first, "wrong")).status_code == 429
        events = await rate_limited_events(app)
        assert len(events_for(events, "127.0.0.1")) == 1
        clock.advance(59)
        assert (await attempt(first, "getroot")).status_code == 429
        assert len(events_for(await rate_limited_events(app), "127.0.0.1")) == 1
        clock.advance(2)  # a minute later (by the server's clock) the next refusal is recorded
        assert (await attempt(first, "getroot")).status_code == 429
        assert (await attempt(first, "getroot")).status_code == 429
        # Another key, refused in the same minute, has its own event.
        for _ in range(5):
            assert (await attempt(second, "wrong")).status_code == 401
        assert (await attempt(second, "wrong")).status_code == 429
        assert (await attempt(second, "wrong")).status_code == 429
    events = await rate_limited_events(app)
    first_events = events_for(events, "127.0.0.1")
    assert len(first_events) == 2
    assert all(e["reason"] == "auth-failures-client-address" for e in first_events)
    assert all(e["client_id"] == "admin" for e in first_events)
    assert len(events_for(events, "127.0.0.2")) == 1


async def test_the_audit_of_bearer_refusals_is_once_per_minute(
    app: FastRouter, clock: FrozenClock
) -> None:
    async with client_at(app, "127.0.0.3") as http:
        for _ in range(4):
            assert (await http.get(PROTECTED, headers=bearer("garbage"))).status_code == 401
        for _ in range(3):
            assert (await http.get(PROTECTED, headers=bearer("garbage"))).status_code == 429
        assert len(await rate_limited_events(app)) == 1
        clock.advance(61)
        assert (await http.get(PROTECTED, headers=bearer("garbage"))).status_code == 429
    events = await rate_limited_events(app)
    assert [e["reason"] for e in events] == ["bearer-failures-address"] * 2


# --- trusted proxies ---------------------------------------------------------------------


@pytest.fixture
async def proxied_app(settings: Settings, clock: FrozenClock) -> AsyncIterator[FastRouter]:
    application = create_app(
        settings.model_copy(update={"trusted_proxies": "127.0.0.1, 10.0.0.0/8"}), clock=clock
    )
    async with lifespan(application):
        yield application


async def test_forwarded_for_from_a_trusted_proxy_picks_the_counted_address(
    proxied_app: FastRouter,
) -> None:
    async with client_at(proxied_app, "127.0.0.1") as proxy:
        behind = {"X-Forwarded-For": "198.51.100.7, 10.1.2.3"}  # client, then an inner proxy
        for _ in range(5):
            assert (await attempt(proxy, "wrong", behind)).status_code == 401
        assert (await attempt(proxy, "getroot", behind)).status_code == 429
        # Another client behind the same proxy is not locked out, nor is the proxy itself.
        other = {"X-Forwarded-For": "198.51.100.8"}
        assert (await attempt(proxy, "getroot", other)).status_code == 200
        assert (await attempt(proxy, "getroot")).status_code == 200
    [event] = await rate_limited_events(proxied_app)
    assert event["ip"] == "198.51.100.7"


async def test_forwarded_for_is_not_believed_from_other_peers(proxied_app: FastRouter) -> None:
    async with client_at(proxied_app, "192.0.2.5") as untrusted:
        for index in range(5):
            spoofed = {"X-Forwarded-For": f"198.51.100.{index}"}
            assert (await attempt(untrusted, "wrong", spoofed)).status_code == 401
        other = {"X-Forwarded-For": "198.51.100.99"}
        assert (await attempt(untrusted, "getroot", other)).status_code == 429
    [event] = await rate_limited_events(proxied_app)
    assert event["ip"] == "192.0.2.5"


async def test_forwarded_for_is_not_believed_when_no_proxy_is_trusted(app: FastRouter) -> None:
    async with client_at(app, "127.0.0.1") as http:
        for index in range(5):
            spoofed = {"X-Forwarded-For": f"198.51.100.{index}"}
            assert (await attempt(http, "wrong", spoofed)).status_code == 401
        assert (
            await attempt(http, "getroot", {"X-Forwarded-For": "198.51.100.99"})
        ).status_code == 429


async def test_a_non_ip_forwarded_for_counts_against_the_proxy(proxied_app: FastRouter) -> None:
    # Issue 8 finding 8: a trusted proxy's header naming no IP is not believed.
    async with client_at(proxied_app, "127.0.0.1") as proxy:
        for index in range(5):
            junk = {"X-Forwarded-For": f"not-an-address-{index}"}
            assert (await attempt(proxy, "wrong", junk)).status_code == 401
        assert (await attempt(proxy, "getroot")).status_code == 429
        assert (await attempt(proxy, "getroot", {"X-Forwarded-For": "unknown"})).status_code == 429
    [event] = await rate_limited_events(proxied_app)
    assert event["ip"] == "127.0.0.1"


# --- Redis -------------------------------------------------------------------------------


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
    for limiter, address in ((first, "10.0.0.1"), (second, "10.0.0.2"), (first, "10.0.0.3")):
        await limiter.before_authentication("shared-client", address)
        await limiter.authentication_failed("shared-client", address)
    with pytest.raises(TooManyRequests):
        await second.before_authentication("shared-client", "10.0.0.4")
    await first.close()
    await second.close()


async def test_an_instance_enforces_shared_failures_from_its_own_first(redis_prefix: str) -> None:
    # A successful request asks Redis nothing: an instance looks a budget up once it has
    # counted a failure for the key itself, so a budget spent elsewhere allows one more try.
    policy = RateLimitPolicy(auth_failures_per_client="2/minute")
    first = RateLimiter(policy, redis_url=REDIS_URL, key_prefix=redis_prefix)
    second = RateLimiter(policy, redis_url=REDIS_URL, key_prefix=redis_prefix)
    for address in ("10.0.0.1", "10.0.0.2"):
        await first.before_authentication("c", address)
        await first.authentication_failed("c", address)
    await second.before_authentication("c", "10.0.0.3")
    await second.authentication_failed("c", "10.0.0.3")
    with pytest.raises(TooManyRequests):
        await second.before_authentication("c", "10.0.0.4")
    await first.close()
    await second.close()


async def test_redis_bearer_budgets_are_shared_between_instances(redis_prefix: str) -> None:
    policy = RateLimitPolicy(bearer_failures_per_address="2/minute")
    first = RateLimiter(policy, redis_url=REDIS_URL, key_prefix=redis_prefix)
    second = RateLimiter(policy, redis_url=REDIS_URL, key_prefix=redis_prefix)
    await first.bearer_failed("10.0.0.1")
    await second.bearer_failed("10.0.0.1")
    with pytest.raises(TooManyRequests):
        await first.bearer_failed("10.0.0.1")
    with pytest.raises(TooManyRequests):
        first.before_bearer("10.0.0.1")
    first.before_bearer("10.0.0.2")
    await first.close()
    await second.close()


async def test_an_unreachable_redis_fails_open(caplog: pytest.LogCaptureFixture) -> None:
    policy = RateLimitPolicy(
        tokens_per_client="1/minute",
        auth_failures_per_client_address="1/minute",
        bearer_failures_per_address="1/minute",
    )

    async def three_rounds(limiter: RateLimiter) -> None:
        for _ in range(3):  # limited after one round if counters worked
            await limiter.token_requested("c")
            await limiter.before_authentication("c", "10.0.0.1")
            await limiter.authentication_failed("c", "10.0.0.1")
            await limiter.bearer_failed("10.0.0.1")

    unreachable = RateLimiter(policy, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    with caplog.at_level(logging.ERROR, logger="oauth_server.oauth.ratelimit"):
        await three_rounds(unreachable)
    await unreachable.close()
    outages = [r for r in caplog.records if "rate-limit store unreachable" in r.getMessage()]
    assert len(outages) == 1  # logged, and once (a minute), not once per call
    assert unreachable.bearer_lockouts == {}
    # The same rounds against counters that work are refused: the test above can fail.
    with pytest.raises(TooManyRequests):
        await three_rounds(RateLimiter(policy))


async def test_app_with_redis_limits(database_url: str, redis_prefix: str) -> None:
    settings = Settings(
        database_url=database_url,
        secret_key=SECRET_KEY,
        redis_url=REDIS_URL,
        redis_key_prefix=redis_prefix,
        rate_limit_auth_failures_per_client_address="2/minute",
    )
    apps: list[FastRouter] = []
    for _ in range(2):
        apps.append(create_app(settings))
    async with lifespan(apps[0]), lifespan(apps[1]):
        clients = [client_at(app, "127.0.0.1") for app in apps]
        try:
            assert (await attempt(clients[0], "bad")).status_code == 401
            assert (await attempt(clients[1], "bad")).status_code == 401
            assert (await attempt(clients[0], "getroot")).status_code == 429
            assert (await attempt(clients[1], "getroot")).status_code == 429
            async with client_at(apps[1], "127.0.0.2") as elsewhere:
                assert (await attempt(elsewhere, "getroot")).status_code == 200
        finally:
            for http in clients:
                await http.aclose()


def test_bad_limit_settings_are_refused() -> None:
    from oauth_server.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="RATE_LIMIT_TOKENS_PER_CLIENT"):
        load_settings(rate_limit_tokens_per_client="lots")
    with pytest.raises(ConfigError, match="RATE_LIMIT_BEARER_FAILURES_PER_ADDRESS"):
        load_settings(rate_limit_bearer_failures_per_address="lots")
    with pytest.raises(ConfigError, match="REDIS_URL"):
        load_settings(redis_url="http://x")
    with pytest.raises(ConfigError, match=r"TRUSTED_PROXIES.*'proxy\.example'"):
        load_settings(trusted_proxies="10.0.0.1, proxy.example")


# --- real server processes ---------------------------------------------------------------


def serve(tmp_path: Path, **env: str) -> ServerProcess:
    return ServerProcess(
        {
            "OAUTH_SERVER_DATABASE_URL": f"sqlite:///{tmp_path}/oauth.db",
            "OAUTH_SERVER_SECRET_KEY": SECRET_KEY,
            **{f"OAUTH_SERVER_{name.upper()}": value for name, value in env.items()},
        },
        log=tmp_path / "server.log",
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    process = serve(tmp_path)  # the default limits
    try:
        yield process.start()
    finally:
        process.stop()


def http_from(server: ServerProcess, address: str) -> httpx.Client:
    """A client whose connections leave from ``address`` (any of 127.0.0.0/8 is loopback)."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=server.url, transport=transport, timeout=10)


def token_status(http: httpx.Client, secret: str, headers: dict[str, str] | None = None) -> int:
    return http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=("admin", secret),
        headers=headers,
    ).status_code


@pytest.mark.slow
def test_a_lockout_from_one_address_spares_the_client_elsewhere(server: ServerProcess) -> None:
    # Issue 8 finding 3, as found: 20 wrong secrets for admin from one address made the
    # correct secret from another address get 429, introspection included.
    with http_from(server, "127.0.0.1") as attacker, http_from(server, "127.0.0.2") as owner:
        assert [token_status(attacker, "wrong") for _ in range(20)] == [401] * 20
        refused = attacker.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=("admin", "getroot")
        )
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        issued = owner.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=("admin", "getroot")
        )
        assert issued.status_code == 200
        token = issued.json()["access_token"]
        introspected = owner.post(
            "/oauth/introspect", data={"token": token}, auth=("admin", "getroot")
        )
        assert introspected.status_code == 200
        assert introspected.json()["active"] is True
        blinded = attacker.post(
            "/oauth/introspect", data={"token": token}, auth=("admin", "getroot")
        )
        assert blinded.status_code == 429


@pytest.mark.slow
def test_refused_bearer_tokens_are_limited_in_a_running_server(server: ServerProcess) -> None:
    with http_from(server, "127.0.0.3") as attacker, http_from(server, "127.0.0.4") as owner:
        token = owner.post(
            "/oauth/token",
            data={"grant_type": "client_credentials", "scope": "restaurent"},
            auth=("admin", "getroot"),
        ).json()["access_token"]
        statuses = [
            attacker.get(PROTECTED, headers=bearer(f"random-{i}")).status_code for i in range(101)
        ]
        assert statuses == [401] * 100 + [429]
        refused = attacker.get(PROTECTED, headers=bearer(token))
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert owner.get(PROTECTED, headers=bearer(token)).status_code == 200


@pytest.mark.slow
async def test_an_unreachable_redis_fails_open_in_a_running_server(tmp_path: Path) -> None:
    closed = free_port()  # nothing listens there
    process = serve(tmp_path, redis_url=f"redis://127.0.0.1:{closed}/0")
    process.start()
    try:
        with http_from(process, "127.0.0.1") as http:
            assert token_status(http, "wrong") == 401
            assert token_status(http, "getroot") == 200
            token = http.post(
                "/oauth/token",
                data={"grant_type": "client_credentials", "scope": "restaurent"},
                auth=("admin", "getroot"),
            ).json()["access_token"]
            assert http.get(PROTECTED, headers=bearer(token)).status_code == 200
            assert http.get(PROTECTED, headers=bearer("random")).status_code == 401
            introspected = http.post(
                "/oauth/introspect", data={"token": token}, auth=("admin", "getroot")
            )
            assert introspected.status_code == 200

        async def warned() -> bool:
            return "rate-limit store unreachable, limits not enforced" in process.output()

        await eventually(warned)
    finally:
        process.stop()


@pytest.mark.slow
def test_trusted_proxies_in_a_running_server(tmp_path: Path) -> None:
    process = serve(
        tmp_path,
        trusted_proxies="127.0.0.1",
        rate_limit_auth_failures_per_client_address="3/minute",
    ).start()
    try:
        with http_from(process, "127.0.0.1") as proxy, http_from(process, "127.0.0.2") as peer:
            # Believed from the trusted proxy: the limits count the address it names.
            client = {"X-Forwarded-For": "198.51.100.7"}
            assert [token_status(proxy, "wrong", client) for _ in range(3)] == [401] * 3
            assert token_status(proxy, "getroot", client) == 429
            assert token_status(proxy, "getroot", {"X-Forwarded-For": "198.51.100.8"}) == 200
            assert token_status(proxy, "getroot") == 200
            # Not believed from another peer: its own address is counted.
            assert [
                token_status(peer, "wrong", {"X-Forwarded-For": f"198.51.100.{i}"})
                for i in range(20, 23)
            ] == [401] * 3
            assert token_status(peer, "getroot", {"X-Forwarded-For": "198.51.100.30"}) == 429
            # A trusted proxy's header that names no IP is not believed either.
            junk = {"X-Forwarded-For": "not-an-ip"}
            assert [token_status(proxy, "wrong", junk) for _ in range(3)] == [401] * 3
            assert token_status(proxy, "getroot") == 429
    finally:
        process.stop()
