"""``/metrics``: a short load moves each OAuth counter by exactly the requests made — in process
and against a real two-worker server (prometheus-client's multiprocess mode) — label values
stay bounded whatever clients send, and only the allowed addresses and the bearer secret get
any metric."""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import signal
import stat
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from oauth_server.config import Settings
from oauth_server.services import Services
from oauth_server.web.api import FastRouter
from oauth_server.web.app import create_app
from tests.conftest import lifespan
from tests.helpers import FORM, SEED_TOKEN_REQUEST, basic, eventually
from tests.process import ServerProcess
from tests.signin import code_for, exchange_form, post_token, refresh, world

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
ADMIN = basic("admin", "getroot")


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def scrape(http: httpx.AsyncClient) -> Samples:
    response = await http.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


async def load(http: httpx.AsyncClient) -> None:
    """50 token requests, 5 bad ones, 3 introspections."""
    tokens = []
    for _ in range(5):  # ten at a time: a real server's workers all get some
        batch = [http.post("/oauth/token", json=SEED_TOKEN_REQUEST) for _ in range(10)]
        for response in await asyncio.gather(*batch):
            assert response.status_code == 200, response.text
            tokens.append(response.json()["access_token"])
    wrong_secret = {**SEED_TOKEN_REQUEST, "client_secret": "not-the-secret"}
    for _ in range(2):
        assert (await http.post("/oauth/token", json=wrong_secret)).status_code == 401
    for _ in range(2):
        unsupported = {**SEED_TOKEN_REQUEST, "grant_type": "password"}
        assert (await http.post("/oauth/token", json=unsupported)).status_code == 400
    bad_scope = {**SEED_TOKEN_REQUEST, "scope": "no-such-scope"}
    assert (await http.post("/oauth/token", json=bad_scope)).status_code == 400
    for token in (tokens[0], tokens[1], "garbage"):
        response = await http.post(
            "/oauth/introspect", data={"token": token}, headers={**FORM, "Authorization": ADMIN}
        )
        assert response.status_code == 200


# (metric, labels, how much the load adds)
EXPECTED: list[tuple[str, dict[str, str], float]] = [
    (
        "oauth_server_tokens_issued_total",
        {"grant_type": "client_credentials", "client_id": "admin"},
        50,
    ),
    (
        "oauth_server_token_errors_total",
        {"error": "invalid_client", "client_id": "_unauthenticated"},
        2,
    ),
    (
        "oauth_server_token_errors_total",
        {"error": "unsupported_grant_type", "client_id": "_unauthenticated"},
        2,
    ),
    ("oauth_server_token_errors_total", {"error": "invalid_scope", "client_id": "admin"}, 1),
    ("oauth_server_introspections_total", {"result": "active"}, 2),
    ("oauth_server_introspections_total", {"result": "inactive"}, 1),
    (
        "oauth_server_request_duration_seconds_count",
        {"route": "/oauth/token", "method": "POST", "status": "200"},
        50,
    ),
    (
        "oauth_server_request_duration_seconds_count",
        {"route": "/oauth/token", "method": "POST", "status": "401"},
        2,
    ),
    (
        "oauth_server_request_duration_seconds_count",
        {"route": "/oauth/token", "method": "POST", "status": "400"},
        3,
    ),
    (
        "oauth_server_request_duration_seconds_bucket",
        {"route": "/oauth/token", "method": "POST", "status": "200", "le": "+Inf"},
        50,
    ),
    (
        "oauth_server_request_duration_seconds_count",
        {"route": "/oauth/introspect", "method": "POST", "status": "200"},
        3,
    ),
]


def rises(before: Samples, after: Samples) -> list[tuple[str, dict[str, str], float]]:
    return [
        (name, labels, value(after, name, **labels) - value(before, name, **labels))
        for name, labels, _ in EXPECTED
    ]


def expected(extra_tokens: int = 0) -> list[tuple[str, dict[str, str], float]]:
    """What the load adds, with ``extra_tokens`` more successful token requests."""

    def grows(name: str, labels: dict[str, str]) -> bool:
        ok_token = labels.get("route") == "/oauth/token" and labels.get("status") == "200"
        return name == "oauth_server_tokens_issued_total" or ok_token

    return [
        (name, labels, float(delta + (extra_tokens if grows(name, labels) else 0)))
        for name, labels, delta in EXPECTED
    ]


async def test_a_short_load_moves_the_counters_by_exactly_the_requests_made(
    client: httpx.AsyncClient,
) -> None:
    before = await scrape(client)
    await load(client)
    after = await scrape(client)
    assert rises(before, after) == expected()
    # The latency buckets are cumulative and end at the count.
    labels = {"route": "/oauth/token", "method": "POST", "status": "200"}
    buckets = [
        v
        for (name, labelset), v in after.items()
        if name == "oauth_server_request_duration_seconds_bucket"
        and dict(labelset).items() >= labels.items()
    ]
    assert buckets == sorted(buckets)
    assert value(after, "oauth_server_request_duration_seconds_sum", **labels) > 0
    # Gauges: the demo database has one signing key, signing; the pool is this process's.
    assert value(after, "oauth_server_signing_keys", state="active") == 1
    assert value(after, "oauth_server_signing_key_next_rotation_seconds") > 0
    assert value(after, "oauth_server_db_pool_size") == 5


async def test_sign_in_refresh_and_replay_counters(
    app: FastRouter, client: httpx.AsyncClient
) -> None:
    await world(app)
    before = await scrape(client)
    seeded = await code_for(app)
    first = await post_token(client, exchange_form(seeded))
    assert first.status_code == 200, first.text
    replayed = await post_token(client, exchange_form(seeded))
    assert replayed.json()["error"] == "invalid_grant"
    # A second code, for a refresh family that outlives the replay's revocation.
    issued = (await post_token(client, exchange_form(await code_for(app)))).json()
    rotated = await refresh(client, issued["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    reused = await refresh(client, issued["refresh_token"])
    assert reused.json()["error"] == "invalid_grant"
    after = await scrape(client)

    def rise(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert rise("oauth_server_code_replays_total") == 1
    assert rise("oauth_server_refresh_rotations_total") == 1
    assert rise("oauth_server_refresh_reuse_detections_total") == 1
    assert (
        rise(
            "oauth_server_tokens_issued_total",
            grant_type="authorization_code",
            client_id="spa",
        )
        == 2
    )
    assert rise("oauth_server_token_errors_total", error="invalid_grant", client_id="spa") == 2


@pytest.mark.settings(rate_limit_login_failures_per_username="2/minute")
async def test_sign_in_outcomes_and_rate_limit_hits(app: FastRouter, app_svc: Services) -> None:
    from tests.signin import (
        authorize_page,
        consent,
        ensure_user,
        full_flow,
        login,
        pkce_pair,
        query_of,
        register_app,
    )

    await ensure_user(app_svc)
    test_app = await register_app(app_svc)
    _, challenge = pkce_pair()

    def browser() -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app)
        return httpx.AsyncClient(transport=transport, base_url="http://testserver")

    async with browser() as http:
        before = await scrape(http)
    async with browser() as http:  # denied on the consent page
        logged_in = await login(http, await authorize_page(http, test_app, challenge))
        denied = await consent(http, logged_in.headers["location"], "deny")
        assert query_of(denied.headers["location"])["error"] == "access_denied"
    async with browser() as http:  # approved after consent
        assert "code" in query_of(await full_flow(http, test_app, challenge))
        # approved again, the consent remembered and the session reused: no page at all
        again = await http.get("/oauth/authorize", params={
            "response_type": "code", "client_id": test_app.client_id,
            "redirect_uri": test_app.redirect_uri, "scope": "openid restaurants:read",
            "code_challenge": challenge, "code_challenge_method": "S256"})  # fmt: skip
        assert "code" in query_of(again.headers["location"])
    async with browser() as http:  # two wrong passwords, then the username is throttled
        page = await authorize_page(http, test_app, challenge)
        statuses = [(await login(http, page, password="wrong")).status_code for _ in range(3)]
        assert statuses == [400, 400, 429]
        after = await scrape(http)

    def rise(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert rise("oauth_server_authorizations_total", outcome="denied") == 1
    assert rise("oauth_server_authorizations_total", outcome="approved") == 2
    assert rise("oauth_server_authorizations_total", outcome="login_failed") == 2
    assert rise("oauth_server_rate_limited_total", limit="login-failures-username") == 1


async def test_hostile_client_ids_and_paths_do_not_become_label_values(
    client: httpx.AsyncClient,
) -> None:
    sprayed = [f"spray-{secrets.token_hex(8)}" for _ in range(20)]
    for client_id in sprayed:
        body = {**SEED_TOKEN_REQUEST, "client_id": client_id}
        assert (await client.post("/oauth/token", json=body)).status_code == 401
    paths = [f"/no/such/{secrets.token_hex(8)}" for _ in range(5)]
    for path in paths:
        assert (await client.get(path)).status_code == 404
    restaurant = "/api/restaurants/5f1a2b3c4d5e6f7a8b9c0d01"
    assert (await client.get(restaurant)).status_code == 200
    text = (await client.get("/metrics")).text
    samples = parse(text)
    for needle in [*sprayed, *paths, restaurant]:
        assert needle not in text
    assert (
        value(
            samples,
            "oauth_server_token_errors_total",
            error="invalid_client",
            client_id="_unauthenticated",
        )
        == 20
    )
    assert (
        value(
            samples,
            "oauth_server_request_duration_seconds_count",
            route="unmatched",
            method="GET",
            status="404",
        )
        == 5
    )
    assert (
        value(
            samples,
            "oauth_server_request_duration_seconds_count",
            route="/api/restaurants/{restaurant_id}",
            method="GET",
            status="200",
        )
        == 1
    )


async def test_client_labels_are_capped(app_svc: Services, client: httpx.AsyncClient) -> None:
    import oauth_server.metrics as metrics_module

    cap = 3
    original = metrics_module.MAX_CLIENT_LABELS
    metrics_module.MAX_CLIENT_LABELS = cap
    try:
        created = []
        for n in range(cap + 2):
            new = await app_svc.registry.create(client_id=f"cap-{n}", scopes=["restaurants:read"])
            assert new.secret is not None
            created.append((f"cap-{n}", new.secret))
        for client_id, secret in created:
            response = await client.post(
                "/oauth/token",
                data={"grant_type": "client_credentials"},
                headers={**FORM, "Authorization": basic(client_id, secret)},
            )
            assert response.status_code == 200, response.text
        samples = parse((await client.get("/metrics")).text)  # labels are chosen at flush
    finally:
        metrics_module.MAX_CLIENT_LABELS = original
    labelled = {
        dict(labels)["client_id"]
        for (name, labels) in samples
        if name == "oauth_server_tokens_issued_total"
    }
    assert labelled == {"cap-0", "cap-1", "cap-2", "_other"}
    assert (
        value(
            samples,
            "oauth_server_tokens_issued_total",
            grant_type="client_credentials",
            client_id="_other",
        )
        == 2
    )


# --- access ---------------------------------------------------------------------------------


async def _get(app: FastRouter, peer: str, **headers: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, client=(peer, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        return await http.get("/metrics", headers=headers)


def _refused(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert "oauth_server_" not in response.text
    assert response.headers["content-type"] == "application/json"


async def test_only_loopback_by_default(app: FastRouter) -> None:
    assert (await _get(app, "127.0.0.1")).status_code == 200
    assert (await _get(app, "::1")).status_code == 200
    _refused(await _get(app, "192.0.2.7"), 403)
    # A forwarded-for header from an untrusted peer changes nothing.
    _refused(await _get(app, "192.0.2.7", **{"X-Forwarded-For": "127.0.0.1"}), 403)


@pytest.mark.settings(metrics_allowed_addresses="10.1.0.0/16", trusted_proxies="10.9.9.9")
async def test_the_allow_list_judges_the_client_behind_a_trusted_proxy(app: FastRouter) -> None:
    assert (await _get(app, "10.1.2.3")).status_code == 200
    _refused(await _get(app, "127.0.0.1"), 403)
    assert (await _get(app, "10.9.9.9", **{"X-Forwarded-For": "10.1.7.7"})).status_code == 200
    _refused(await _get(app, "10.9.9.9", **{"X-Forwarded-For": "192.0.2.1"}), 403)


SECRET = "metrics-bearer-" + "s" * 32


@pytest.mark.settings(metrics_token_sha256=hashlib.sha256(SECRET.encode()).hexdigest())
async def test_a_configured_bearer_secret_is_required(app: FastRouter) -> None:
    missing = await _get(app, "127.0.0.1")
    _refused(missing, 401)
    assert missing.headers["www-authenticate"] == 'Bearer realm="metrics"'
    wrong = await _get(app, "127.0.0.1", Authorization=f"Bearer {SECRET}x")
    _refused(wrong, 401)
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
    _refused(await _get(app, "127.0.0.1", Authorization=f"Basic {SECRET}"), 401)
    assert (await _get(app, "127.0.0.1", Authorization=f"Bearer {SECRET}")).status_code == 200
    # Both checks apply: the right secret from an address not on the list is refused.
    _refused(await _get(app, "192.0.2.7", Authorization=f"Bearer {SECRET}"), 403)


async def test_the_bearer_secret_can_come_from_a_file(settings: Settings, tmp_path: Path) -> None:
    secret_file = tmp_path / "metrics-token"
    secret_file.write_text(SECRET + "\n")
    app = create_app(settings.model_copy(update={"metrics_token_file": secret_file}))
    async with lifespan(app):
        _refused(await _get(app, "127.0.0.1", Authorization="Bearer other"), 401)
        assert (await _get(app, "127.0.0.1", Authorization=f"Bearer {SECRET}")).status_code == 200


def test_the_secret_settings_are_validated() -> None:
    from oauth_server.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="METRICS_TOKEN_SHA256"):
        load_settings(metrics_token_sha256="not-hex")
    with pytest.raises(ConfigError, match="METRICS_ALLOWED_ADDRESSES"):
        load_settings(metrics_allowed_addresses="everyone")
    assert "metrics_token_sha256" not in repr(load_settings(metrics_token_sha256="a" * 64))


# --- a real server with two workers -----------------------------------------------------------


@pytest.mark.slow
async def test_two_workers_add_up_to_exactly_the_requests_made(
    database_url: str, tmp_path: Path
) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {
        "OAUTH_SERVER_DATABASE_URL": database_url,
        "OAUTH_SERVER_SECRET_KEY_FILE": str(tmp_path / "secret_key"),
        "OAUTH_SERVER_WORKERS": "2",
        "TMPDIR": str(temp),  # where serve makes its private metrics directory
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "not-this-one"),  # replaced by serve's own
    }
    server = ServerProcess(env, log=tmp_path / "server.log")
    await asyncio.to_thread(server.start)
    try:
        (directory,) = temp.glob("oauth-server-metrics-*")
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        # A new connection per request: the kernel spreads them over both workers.
        async with httpx.AsyncClient(
            base_url=server.url, limits=httpx.Limits(max_keepalive_connections=0)
        ) as http:
            # Both workers are up once each has written its files (one set per process).
            await eventually(lambda: len({p.name.rsplit("_", 1)[-1] for p in directory.glob(
                "counter_*.db")}) >= 2, within=20)  # fmt: skip
            before = await scrape(http)
            await load(http)
            # Which worker accepts a connection is the kernel's choice: until both have
            # counted tokens, ten more requests at a time (counted, and expected below).
            extra = 0

            async def both_counted() -> bool:
                nonlocal extra
                issued = [issued_in(path) for path in directory.glob("counter_*.db")]
                if len([n for n in issued if n > 0]) == 2:
                    return True
                batch = [http.post("/oauth/token", json=SEED_TOKEN_REQUEST) for _ in range(10)]
                assert all(r.status_code == 200 for r in await asyncio.gather(*batch))
                extra += 10
                return False

            await eventually(both_counted, within=60, interval=0.5)

            async def settled() -> bool:
                return rises(before, await scrape(http)) == expected(extra)

            # Each worker moves its sums into the shared files every second.
            await eventually(settled, within=10)
            # Their sums are what the scrape showed, and nothing more.
            assert sum(issued_in(path) for path in directory.glob("counter_*.db")) == 50 + extra
            assert rises(before, await scrape(http)) == expected(extra)

            # A killed worker's pool leaves the sums; its replacement's joins them.
            pool = value(await scrape(http), "oauth_server_db_pool_size")
            assert pool == 2 * 20  # two workers, OAUTH_SERVER_DATABASE_POOL_SIZE each
            assert server.process is not None
            workers = children(server.process.pid)
            assert len(workers) == 2, workers
            os.kill(workers[0], signal.SIGKILL)

            async def replaced() -> bool:
                now = children(server.process.pid)  # type: ignore[union-attr]
                return len(now) == 2 and workers[0] not in now

            await eventually(replaced, within=30)

            async def pool_settled() -> bool:
                return value(await scrape(http), "oauth_server_db_pool_size") == pool

            await eventually(pool_settled, within=30)
            assert not list(directory.glob(f"gauge_live*_{workers[0]}.db"))
    finally:
        await asyncio.to_thread(server.stop)
    assert not directory.exists()  # removed at shutdown
    assert not (tmp_path / "not-this-one").exists()


def children(pid: int) -> list[int]:
    """uvicorn's workers: the children of ``pid`` but multiprocessing's resource tracker."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                command = Path(f"/proc/{child}/cmdline").read_bytes()
            except FileNotFoundError:
                continue  # gone meanwhile
            if b"resource_tracker" not in command:
                found.append(int(child))
    return found


def issued_in(path: Path) -> float:
    """The client_credentials tokens one worker's file counts."""
    from prometheus_client.multiprocess import MultiProcessCollector

    total = 0.0
    for metric in MultiProcessCollector.merge([str(path)]):  # type: ignore[no-untyped-call]
        for sample in metric.samples:
            if sample.name == "oauth_server_tokens_issued_total":
                total += sample.value
    return total


def test_the_cli_does_not_load_prometheus_client() -> None:
    """prometheus-client picks its value store when first imported: it must first be imported
    in the worker, after ``serve`` set PROMETHEUS_MULTIPROC_DIR."""
    import subprocess
    import sys

    code = "import sys, oauth_server.cli; print('prometheus_client' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    )
    assert result.stdout.strip() == "False"
