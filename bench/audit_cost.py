"""Microbenchmark: what OAUTH_SERVER_AUDIT_TOKEN_ISSUED=true costs per token.

Calls the token endpoint core (``TokenEndpoint.handle``: parse, authenticate the client,
grant, sign an ES256 JWT, respond) in a loop — no HTTP, clients from memory — with the audit
event off and on. "On" is measured twice: the request-path cost alone (``record`` appends to
a list), and the full cost including sealing the events into the hash chain and writing them
to a real database (SQLite file, or ``--database-url``), as the background task would.

    .venv/bin/python bench/audit_cost.py [--n 20000] [--rounds 5] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from urllib.parse import urlencode

from oauth_server.audit import AuditTrail
from oauth_server.clock import SystemClock
from oauth_server.crypto import hash_secret
from oauth_server.oauth.client_auth import ClientAuthenticator
from oauth_server.oauth.clients import ClientDirectory
from oauth_server.oauth.endpoints.token import TokenEndpoint
from oauth_server.oauth.grants import default_grants
from oauth_server.oauth.http import OAuthRequest
from oauth_server.oauth.keys import KeyRing, LoadedKey, generate_private_jwk
from oauth_server.oauth.tokens.issue import JwtAccessTokenIssuer, TokenService
from oauth_server.storage import Client, SqlStorage, open_storage

RESOURCE = "https://api.example"
REQUEST = OAuthRequest(
    "POST",
    "/oauth/token",
    headers={"content-type": "application/x-www-form-urlencoded"},
    body=urlencode(
        {"grant_type": "client_credentials", "client_id": "bench", "client_secret": "s3cret"}
    ).encode(),
    client_ip="127.0.0.1",
)


class Clients:
    def __init__(self) -> None:
        self.client = Client(
            client_id="bench",
            secret_hash=hash_secret("s3cret"),
            scopes=frozenset({"a"}),
            default_scopes=("a",),
        )

    async def get(self, *, client_id: str) -> Client | None:
        return self.client if client_id == "bench" else None


def endpoint(trail: AuditTrail, *, audit_issued: bool) -> TokenEndpoint:
    clock = SystemClock()
    key = generate_private_jwk("ES256")
    public = {**key.as_dict(private=False), "kid": "k1", "use": "sig", "alg": "ES256"}
    ring = KeyRing(token_ttl=3600, leeway=30)
    ring.replace([LoadedKey("k1", "ES256", 1, 0, key, public)])
    return TokenEndpoint(
        authenticator=ClientAuthenticator(ClientDirectory(Clients()), audit=trail),  # type: ignore[arg-type]
        grants=default_grants(default_resource=RESOURCE),
        tokens=TokenService(
            {"jwt": JwtAccessTokenIssuer(ring, issuer="https://as", clock=clock, ttl=3600)}
        ),
        audit=trail,
        audit_issued=audit_issued,
    )


async def loop(target: TokenEndpoint, n: int) -> float:
    start = time.process_time()
    for _ in range(n):
        await target.handle(REQUEST)
    return time.process_time() - start


async def flush(trail: AuditTrail) -> float:
    start = time.process_time()
    await trail.flush()  # seal + write, as the background task does every second
    return time.process_time() - start


async def measure(storage: SqlStorage, n: int, rounds: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {"off": [], "on (request path)": [], "on (with write)": []}
    for _ in range(rounds):
        trail = AuditTrail(storage.audit, clock=SystemClock(), max_buffered=10 * n)
        off = endpoint(trail, audit_issued=False)
        on = endpoint(trail, audit_issued=True)
        await loop(off, 500)  # warm-up
        await loop(on, 500)
        await trail.flush()
        results["off"].append(await loop(off, n) / n)
        # Flushed every 1,000 tokens, as at 1,000 tokens/s: the buffer stays as small as in
        # a server, which matters to the garbage collector.
        path = write = 0.0
        for _ in range(n // 1000):
            path += await loop(on, 1000)
            write += await flush(trail)
        results["on (request path)"].append(path / n)
        results["on (with write)"].append((path + write) / n)
    return results


async def main(n: int, rounds: int, database_url: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        storage = open_storage(database_url or f"sqlite:///{tmp}/bench.db")
        await storage.migrate()
        try:
            results = await measure(storage, n, rounds)
        finally:
            await storage.close()
    base = statistics.median(results["off"])
    print(f"backend {storage.backend}, {n} tokens x {rounds} rounds, median CPU per token:")
    for name, values in results.items():
        median = statistics.median(values)
        extra = f"  (+{(median - base) * 1e6:.2f} µs, +{(median / base - 1) * 100:.1f} %)"
        print(f"  {name:<20} {median * 1e6:8.2f} µs" + ("" if name == "off" else extra))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    asyncio.run(main(args.n, args.rounds, args.database_url))
