"""Micro-benchmark of the in-process ASGI path: router, adapter, core, response.

Not the benchmark (bench/run.py is): this drives the ASGI callable directly, without sockets or
a server, to compare the cost of the web seam before and after a change. It times N token
requests (client_credentials, JSON body) and N authenticated ``GET /restaurent`` with
``time.perf_counter`` (and ``time.process_time``, steadier on a shared machine) and prints
requests per second for each (best of ``--rounds``).

``--garbage`` times, on the same SQLite app, known opaque tokens against values the server never
minted (issue 11 item 3): introspection, revocation, ``GET /api/restaurants`` and the token
endpoint's refresh_token and authorization_code grants. Its values are made without the token
format's module, so the same script measures a checkout from before the format too
(``PYTHONPATH=<old checkout>/src``): "unknown" is ``pos_at_`` and 67 random base64url
characters (a checksum that fails), "legacy unknown" a well-formed token of the old format that
no database holds.

    .venv/bin/python bench/asgi_micro.py [-n 20000] [--rounds 3] [--garbage]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import os
import tempfile
import time
from collections.abc import MutableMapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson

from oauth_server.config import Settings
from oauth_server.crypto import new_split_token
from oauth_server.services import Services
from oauth_server.web.app import create_app

TOKEN_BODY = orjson.dumps(
    {
        "client_id": "admin",
        "client_secret": "getroot",
        "grant_type": "client_credentials",
        "scope": "restaurent",
    }
)


def _scope(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8889),
    }


async def _call(app: Any, scope: dict[str, Any], body: bytes) -> tuple[int, bytes]:
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await app(dict(scope), receive, send)
    return sent[0]["status"], sent[1]["body"]


async def _lifespan(app: Any) -> tuple[asyncio.Queue[Any], asyncio.Task[None]]:
    inbox: asyncio.Queue[Any] = asyncio.Queue()
    outbox: asyncio.Queue[Any] = asyncio.Queue()
    task = asyncio.create_task(app({"type": "lifespan"}, inbox.get, outbox.put))
    await inbox.put({"type": "lifespan.startup"})
    started = await outbox.get()
    assert started["type"] == "lifespan.startup.complete", started
    return inbox, task


Request = tuple[dict[str, Any], bytes]

FORM_HEADERS = [
    (b"host", b"127.0.0.1:8889"),
    (b"content-type", b"application/x-www-form-urlencoded"),
]
REDIRECT = "http://127.0.0.1:9/callback"


def _form(path: str, fields: dict[str, str]) -> Request:
    body = urlencode(fields).encode()
    headers = [*FORM_HEADERS, (b"content-length", str(len(body)).encode())]
    return _scope("POST", path, headers), body


def _bearer(path: str, token: str) -> Request:
    headers = [(b"host", b"127.0.0.1:8889"), (b"authorization", f"Bearer {token}".encode())]
    return _scope("GET", path, headers), b""


def _unknown(prefix: str) -> str:
    return prefix + base64.urlsafe_b64encode(os.urandom(50)).rstrip(b"=").decode()


def _garbage(known: str, prefix: str, count: int = 400) -> list[str]:
    """Unknown, random, truncated and forged (a flipped character of the secret) in turn."""
    values = []
    for i in range(count // 4):
        flipped = known[:40] + ("A" if known[40] != "A" else "B") + known[41:]
        values += [_unknown(prefix), prefix + "x" * 67, known[: -1 - i % 30], flipped]
    return values


async def _garbage_requests(app: Any, services: Services) -> list[tuple[str, list[Request]]]:
    resource = services.settings.resource_id
    opaque = await services.registry.create(
        client_id="micro-opaque",
        token_format="opaque",
        scopes=["restaurent"],
        introspect=[resource],
    )
    await services.registry.create(
        client_id="micro-public", client_type="public", redirect_uris=[REDIRECT],
        grant_types=["authorization_code", "refresh_token"],
    )  # fmt: skip
    creds = {"client_id": "micro-opaque", "client_secret": opaque.secret or ""}
    status, body = await _call(
        app, *_form("/oauth/token", {"grant_type": "client_credentials", **creds})
    )
    assert status == 200, body
    revoked = orjson.loads(body)["access_token"]
    revoked_status, _ = await _call(app, *_form("/oauth/revoke", {"token": revoked, **creds}))
    assert revoked_status == 200
    status, body = await _call(
        app, *_form("/oauth/token", {"grant_type": "client_credentials", **creds})
    )
    known = orjson.loads(body)["access_token"]  # a live one for the known scenarios
    now = services.clock.now()
    legacy = [new_split_token(now - i / 10).value for i in range(400)]
    garbage = _garbage(known, "pos_at_")

    def introspect(token: str) -> Request:
        return _form("/oauth/introspect", {"token": token, **creds})

    def revoke(token: str) -> Request:
        return _form("/oauth/revoke", {"token": token, **creds})

    def refresh(token: str) -> Request:
        fields = {
            "grant_type": "refresh_token",
            "refresh_token": token,
            "client_id": "micro-public",
        }
        return _form("/oauth/token", fields)

    def code(token: str) -> Request:
        fields = {
            "grant_type": "authorization_code", "code": token, "client_id": "micro-public",
            "redirect_uri": REDIRECT, "code_verifier": "v" * 43,
        }  # fmt: skip
        return _form("/oauth/token", fields)

    status, _ = await _call(app, *_bearer("/api/restaurants", known))
    assert status == 200
    status, body = await _call(app, *introspect(known))
    assert orjson.loads(body)["active"] is True
    refresh_garbage = [_unknown("pos_rt_") for _ in range(200)]
    code_garbage = [_unknown("pos_ac_") for _ in range(200)]
    return [
        ("cc opaque", [_form("/oauth/token", {"grant_type": "client_credentials", **creds})]),
        ("introspect known", [introspect(known)]),
        ("introspect unknown", [introspect(_unknown("pos_at_")) for _ in range(400)]),
        ("introspect garbage", [introspect(t) for t in garbage]),
        ("introspect legacy", [introspect(t) for t in legacy]),
        ("revoke revoked", [revoke(revoked)]),
        ("revoke garbage", [revoke(t) for t in garbage]),
        ("GET opaque known", [_bearer("/api/restaurants", known)]),
        ("GET garbage", [_bearer("/api/restaurants", t) for t in garbage]),
        ("GET legacy", [_bearer("/api/restaurants", t) for t in legacy]),
        ("refresh garbage", [refresh(t) for t in refresh_garbage]),
        ("refresh legacy", [refresh(t) for t in legacy]),
        ("code garbage", [code(t) for t in code_garbage]),
        ("code legacy", [code(t) for t in legacy]),
    ]


async def _time(app: Any, name: str, requests: Sequence[Request], n: int, rounds: int) -> None:
    best = best_cpu = 0.0
    for _ in range(rounds):
        cycle = itertools.cycle(requests)
        started, started_cpu = time.perf_counter(), time.process_time()
        for _ in range(n):
            await _call(app, *next(cycle))
        elapsed = time.perf_counter() - started
        elapsed_cpu = time.process_time() - started_cpu
        best = max(best, n / elapsed)
        best_cpu = max(best_cpu, n / elapsed_cpu)
    # On a shared machine the CPU-time rate is the steadier of the two.
    print(
        f"{name:20s} {best:10.0f} req/s wall  {best_cpu:10.0f} req/s CPU  (best of {rounds} x {n})"
    )


async def main(n: int, rounds: int, garbage: bool = False) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            env="development",
            database_url=f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}",
            demo_data=True,
            secret_key="bench-secret-key-of-at-least-32-characters",
            password_hash_time_cost=1,
            password_hash_memory_cost=8,
            # Garbage bearers from one address would meet the limiter's 429 after 100.
            rate_limit_bearer_failures_per_address="1000000000/minute",
            rate_limit_auth_failures_per_address="1000000000/minute",
            rate_limit_auth_failures_per_client_address="1000000000/minute",
        )
        app = create_app(settings)
        inbox, task = await _lifespan(app)
        token_scope = _scope(
            "POST",
            "/oauth/token",
            [
                (b"host", b"127.0.0.1:8889"),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(TOKEN_BODY)).encode()),
            ],
        )
        status, body = await _call(app, token_scope, TOKEN_BODY)
        assert status == 200, body
        token = orjson.loads(body)["access_token"]
        get_scope = _scope(
            "GET",
            "/restaurent",
            [(b"host", b"127.0.0.1:8889"), (b"authorization", f"Bearer {token}".encode())],
        )
        status, body = await _call(app, get_scope, b"")
        assert status == 200, body
        if garbage:
            for name, requests in await _garbage_requests(app, app.state.services):
                await _time(app, name, requests, n, rounds)
            await inbox.put({"type": "lifespan.shutdown"})
            await task
            return
        for name, scope, payload in (
            ("token", token_scope, TOKEN_BODY),
            ("resource GET", get_scope, b""),
        ):
            best = best_cpu = 0.0
            for _ in range(rounds):
                started, started_cpu = time.perf_counter(), time.process_time()
                for _ in range(n):
                    await _call(app, scope, payload)
                elapsed = time.perf_counter() - started
                elapsed_cpu = time.process_time() - started_cpu
                best = max(best, n / elapsed)
                best_cpu = max(best_cpu, n / elapsed_cpu)
            # On a shared machine the CPU-time rate is the steadier of the two.
            print(
                f"{name:14s} {best:10.0f} req/s wall  {best_cpu:10.0f} req/s CPU  "
                f"(best of {rounds} x {n})"
            )
        await inbox.put({"type": "lifespan.shutdown"})
        await task


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--garbage", action="store_true", help="known against garbage tokens")
    args = parser.parse_args()
    asyncio.run(main(args.n, args.rounds, args.garbage))
