"""Micro-benchmark of the in-process ASGI path: router, adapter, core, response.

Not the benchmark (bench/run.py is): this drives the ASGI callable directly, without sockets or
a server, to compare the cost of the web seam before and after a change. It times N token
requests (client_credentials, JSON body) and N authenticated ``GET /restaurent`` with
``time.perf_counter`` (and ``time.process_time``, steadier on a shared machine) and prints
requests per second for each (best of ``--rounds``).

    .venv/bin/python bench/asgi_micro.py [-n 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import orjson

from oauth_server.config import Settings
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


async def main(n: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            env="development",
            database_url=f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}",
            demo_data=True,
            secret_key="bench-secret-key-of-at-least-32-characters",
            password_hash_time_cost=1,
            password_hash_memory_cost=8,
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
    args = parser.parse_args()
    asyncio.run(main(args.n, args.rounds))
