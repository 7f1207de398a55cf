"""The audit trail through the app and the CLI, on SQLite and PostgreSQL: which events reach
the table, that token issuance is recorded only when configured, flush on shutdown, and
``oauth-server audit verify`` catching a changed, deleted or reordered row."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt as pyjwt
import pytest
from sqlalchemy import delete, select, update

from oauth_server.audit import AuditTrail, verify_trail
from oauth_server.clock import FrozenClock
from oauth_server.config import Settings
from oauth_server.errors import TooManyRequests
from oauth_server.oauth.ratelimit import RateLimiter, RateLimitPolicy
from oauth_server.storage import AuditRecord, SqlStorage, Storage, open_storage
from oauth_server.storage.sql.schema import audit_events
from oauth_server.web.api import FastRouter
from oauth_server.web.app import create_app
from tests.conftest import lifespan
from tests.helpers import SEED_TOKEN_REQUEST, app_services, basic


async def events(storage: Storage, chain_id: str | None = None) -> list[tuple[str, Any]]:
    rows = await storage.audit.scan(after=None, limit=10_000)
    return [
        (r.kind, json.loads(r.data)) for r in rows if chain_id is None or r.chain_id == chain_id
    ]


async def test_security_events_reach_the_audit_table(
    app: FastRouter, client: httpx.AsyncClient
) -> None:
    built = app_services(app)
    created = await built.registry.create(client_id="svc", scopes=["restaurants:read"])
    assert created.secret is not None
    wrong = {"grant_type": "client_credentials", "client_id": "svc", "client_secret": "nope"}
    assert (await client.post("/oauth/token", data=wrong)).status_code == 401
    token = (await client.post("/oauth/token", json=SEED_TOKEN_REQUEST)).json()["access_token"]
    revoked = await client.post(
        "/oauth/revoke", data={"token": token}, headers={"Authorization": basic("admin", "getroot")}
    )
    assert revoked.status_code == 200
    await built.registry.rotate_secret("svc")
    kid = await built.keys.rotate(immediately=True)
    assert kid is not None
    assert await built.keys.remove(kid)
    assert await built.registry.delete("svc")
    # The real rate limiter, recording into this trail, hitting a limit.
    limiter = RateLimiter(
        RateLimitPolicy(bearer_failures_per_address="1/minute"),
        audit=built.audit,
        clock=built.clock,
    )
    await limiter.bearer_failed("203.0.113.9")
    with pytest.raises(TooManyRequests):
        await limiter.bearer_failed("203.0.113.9")
    await built.audit.flush()

    recorded = await events(built.storage, built.audit.chain_id)
    jti = pyjwt.decode(token, options={"verify_signature": False})["jti"]
    first_kid = built.keys.ring.signing_key(built.clock.now()).kid
    demo_user = await built.storage.users.get_by_username(username="demo")
    assert demo_user is not None
    assert recorded[0] == (
        "chain_started",
        {"program": "server", "pid": os.getpid(), "host": socket.gethostname()},
    )
    assert recorded[1:] == [
        # start-up: the first signing key, the demo client and the demo user
        ("signing_key_created", {"kid": first_kid, "alg": "ES256"}),
        (
            "client_created",
            {"client_id": "admin", "scope": "restaurent restaurants:read restaurants:write"},
        ),
        ("user_created", {"user_id": demo_user.user_id, "username": "demo"}),
        ("client_created", {"client_id": "svc", "scope": "restaurants:read"}),
        (
            "client_auth_failed",
            {
                "client_id": "svc",
                "ip": "127.0.0.1",
                "endpoint": "/oauth/token",
                "reason": "wrong secret",
            },
        ),
        (
            "token_revoked",
            {"client_id": "admin", "token_id": jti, "token_type": "jwt", "ip": "127.0.0.1"},
        ),
        ("client_secret_rotated", {"client_id": "svc"}),
        ("signing_key_created", {"kid": kid, "alg": "ES256"}),
        ("signing_key_removed", {"kid": kid}),
        ("client_deleted", {"client_id": "svc"}),
        (
            "rate_limited",
            {"reason": "bearer-failures-address", "limit": "1 per 1 minute", "ip": "203.0.113.9"},
        ),
    ]
    assert not any(kind == "token_issued" for kind, _ in recorded)  # off by default
    assert all(report.ok for report in await verify_trail(built.storage.audit))


@pytest.fixture
async def issuing_app(settings: Settings, clock: FrozenClock) -> AsyncIterator[FastRouter]:
    application = create_app(settings.model_copy(update={"audit_token_issued": True}), clock=clock)
    async with lifespan(application):
        yield application


async def test_token_issued_is_recorded_when_configured(issuing_app: FastRouter) -> None:
    transport = httpx.ASGITransport(app=issuing_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        token = (await http.post("/oauth/token", json=SEED_TOKEN_REQUEST)).json()["access_token"]
    built = app_services(issuing_app)
    await built.audit.flush()
    jti = pyjwt.decode(token, options={"verify_signature": False})["jti"]
    assert (
        "token_issued",
        {
            "client_id": "admin",
            "token_id": jti,
            "token_type": "jwt",
            "scope": "restaurent",
            "ip": "127.0.0.1",
        },
    ) in await events(built.storage, built.audit.chain_id)


async def test_buffered_events_are_written_at_shutdown(
    settings: Settings, clock: FrozenClock
) -> None:
    application = create_app(settings, clock=clock)
    async with lifespan(application):
        built = app_services(application)
        built.audit.record("rate_limited", ip="198.51.100.1", limit="5/minute")
        chain = built.audit.chain_id
    storage = open_storage(settings.database_url)
    try:
        assert ("rate_limited", {"ip": "198.51.100.1", "limit": "5/minute"}) in await events(
            storage, chain
        )
    finally:
        await storage.close()


# --- the CLI ---------------------------------------------------------------------------------


async def chain_of(storage: SqlStorage, n: int = 6) -> str:
    trail = AuditTrail(storage.audit, clock=FrozenClock(), program="test")
    for i in range(n):
        trail.record("client_auth_failed", client_id=f"c{i}", reason="wrong secret")
    await trail.flush()
    return trail.chain_id


async def row(storage: SqlStorage, chain: str, seq: int) -> AuditRecord:
    [record] = await storage.audit.scan(after=(chain, seq - 1), limit=1)
    return record


async def execute(storage: SqlStorage, *statements: Any) -> None:
    async with storage.engine.begin() as conn:
        for statement in statements:
            await conn.execute(statement)


def at(chain: str, seq: int) -> Any:
    return (audit_events.c.chain_id == chain) & (audit_events.c.seq == seq)


async def test_cli_records_its_own_changes(run, storage: SqlStorage) -> None:  # type: ignore[no-untyped-def]
    created = await asyncio.to_thread(run, "clients", "create", "--client-id", "cli1", "--json")
    assert created.exit_code == 0, created.output
    tail = await asyncio.to_thread(run, "audit", "tail", "-n", "2", "--json")
    assert tail.exit_code == 0, tail.output
    lines = [json.loads(line) for line in tail.stdout.splitlines()]
    assert [(line["kind"], line["seq"]) for line in lines] == [
        ("chain_started", 1),
        ("client_created", 2),
    ]
    assert lines[0]["data"]["program"] == "cli clients create"
    assert lines[1]["data"] == {"client_id": "cli1", "scope": ""}
    text = await asyncio.to_thread(run, "audit", "tail")
    assert "client_created" in text.output
    assert 'client_id="cli1"' in text.output


@pytest.mark.parametrize("tampering", ["modified", "deleted", "reordered", "relabelled"])
async def test_audit_verify_reports_tampering(  # type: ignore[no-untyped-def]
    run, storage: SqlStorage, tampering: str
) -> None:
    chain = await chain_of(storage)
    other = await chain_of(storage, 2)
    clean = await asyncio.to_thread(run, "audit", "verify")
    assert clean.exit_code == 0, clean.output
    assert clean.output.count(" ok") == 2
    head = (await row(storage, chain, 7)).digest.hex()
    assert f"head {head}" in clean.output

    three, four = await row(storage, chain, 3), await row(storage, chain, 4)
    if tampering == "modified":
        changed = three.data.replace("c1", "c7")
        await execute(storage, update(audit_events).where(at(chain, 3)).values(data=changed))
        expected = "event 3 does not match its digest"
    elif tampering == "deleted":
        await execute(storage, delete(audit_events).where(at(chain, 4)))
        expected = "events 4..4 are missing"
    elif tampering == "reordered":
        swapped = [
            update(audit_events).where(at(chain, 3)).values(data=four.data, digest=four.digest),
            update(audit_events).where(at(chain, 4)).values(data=three.data, digest=three.digest),
        ]
        await execute(storage, *swapped)
        expected = "event 3 does not match its digest"
    else:  # a row moved from one chain into another
        await execute(
            storage,
            delete(audit_events).where(at(other, 2)),
            update(audit_events).where(at(chain, 7)).values(chain_id=other, seq=2),
        )
        expected = "event 2 does not match its digest"
    result = await asyncio.to_thread(run, "audit", "verify")
    assert result.exit_code == 1
    assert expected in result.output
    assert "tampering detected: 1 of 2 chains" in result.output
    as_json = await asyncio.to_thread(run, "audit", "verify", "--json")
    assert as_json.exit_code == 1
    assert [r["ok"] for r in json.loads(as_json.stdout.splitlines()[0])].count(False) == 1


async def test_audit_verify_on_an_empty_trail(run, storage: SqlStorage) -> None:  # type: ignore[no-untyped-def]
    async with storage.engine.connect() as conn:
        assert (await conn.execute(select(audit_events))).first() is None
    result = await asyncio.to_thread(run, "audit", "verify")
    assert result.exit_code == 0, result.output
    assert "0 chains, 0 events" in result.output
