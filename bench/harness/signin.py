"""What the sign-in scenarios need before a measurement: a public client and a user, and
authorization codes issued for them ahead of time, on our server and on node-oidc-provider.

Both servers get the same request: a public client (`none`), PKCE S256 with one verifier,
the redirect URI http://127.0.0.1/cb, and scopes `openid offline_access` plus the restaurants
scope, so that every redemption signs an ID token and a JWT access token and starts a
refresh-token family, and every refresh rotates (both servers rotate on every use).

Codes are issued the way each server's authorization endpoint issues them, without the pages
in front (the login scenario measures those): on ours, rows of the server's own
`authorization_codes` table made with the server's own token format (its TokenCodec),
written in bulk; on node-oidc-provider, its own models through the benchmark-only route
`POST /bench/mint` (bench/node/server.mjs). Refresh tokens are what redeeming such codes over
HTTP answers.
"""

import asyncio
import base64
import hashlib
import json
import sys
import time
import urllib.parse
from dataclasses import dataclass, replace
from http.client import HTTPException
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import insert

from oauth_server.clock import SystemClock
from oauth_server.config import Settings
from oauth_server.oauth.tokens.format import TokenCodec
from oauth_server.services import build_token_codec
from oauth_server.storage.sql.engine import create_sync_sqlite_engine
from oauth_server.storage.sql.schema import authorization_codes

from .databases import Database
from .loads import Load, LoadError
from .loopback import request

VERIFIER = "bench-verifier-".ljust(64, "x")  # RFC 7636 §4.1: 43-128 unreserved characters
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=")
REDIRECT_URI = "http://127.0.0.1/cb"
PYTHON_SCOPE = "openid offline_access restaurants:read"
NODE_CLIENT = "spa"
CODE_TTL_S = 600
# Codes per measurement: more than either server redeems in a measurement on this machine.
CODES_PER_SECOND = 6_000
# Refresh tokens each wrk thread starts with: more than its connections, so none waits.
REFRESH_POOL_PER_CONNECTION = 2


@dataclass(frozen=True)
class SignInParty:
    """Our server's public client and user for the sign-in scenarios."""

    client_id: str
    user_id: str
    username: str = ""


def _row(codec: TokenCodec, client_id: str, user_id: str, now: float) -> tuple[str, dict[str, Any]]:
    handle = codec.mint("authorization_code", now)
    return handle.value, {
        "selector": handle.selector,
        "verifier_hash": handle.verifier_hash,
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "user_id": user_id,
        "scope": PYTHON_SCOPE,
        "code_challenge": CHALLENGE.decode(),
        "code_challenge_method": "S256",
        "resource": "",
        "nonce": "",
        "session_id": "",
        "auth_time": int(now),
        "issued_at": int(now),
        "expires_at": int(now) + CODE_TTL_S,
        "used_at": None,
        "replayed_at": None,
        "refresh_family_id": None,
    }


def python_codes(database: Database, party: SignInParty, count: int, secret_key: str) -> list[str]:
    """Issue `count` codes straight into our server's database, in the server's own format
    (its checksum keyed by the run's secret key, as the server's)."""
    codec = build_token_codec(
        Settings(database_url=database.url, secret_key=secret_key), SystemClock()
    )
    now = time.time()
    made = [_row(codec, party.client_id, party.user_id, now) for _ in range(count)]
    rows = [row for _, row in made]
    if database.backend == "sqlite":
        engine = create_sync_sqlite_engine(database.name)
        try:
            with engine.begin() as conn:
                conn.execute(insert(authorization_codes), rows)
        finally:
            engine.dispose()
    else:
        asyncio.run(_copy_postgres(database.url, rows))
    return [value for value, _ in made]


async def _copy_postgres(dsn: str, rows: list[dict[str, Any]]) -> None:
    columns = list(rows[0])
    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        await connection.copy_records_to_table(
            authorization_codes.name,
            columns=columns,
            records=[tuple(row[c] for c in columns) for row in rows],
        )
    finally:
        await connection.close()


def node_codes(port: int, count: int) -> list[str]:
    try:
        status, body = request(port, "POST", f"/bench/mint?n={count}", timeout=120)
    except (OSError, HTTPException) as error:
        raise LoadError(f"node-oidc-provider minted no codes: {error}") from error
    if status != 200:
        raise LoadError(f"node-oidc-provider minted no codes: {status} {body[:200]!r}")
    return body.decode().split()


def redeem(port: int, path: str, client_id: str, code: str) -> str:
    """One code redeemed over HTTP; returns its refresh token."""
    body = urllib.parse.urlencode(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": client_id,
            "code_verifier": VERIFIER,
        }
    )
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    try:
        status, answer = request(port, "POST", path, body, headers)
        token = json.loads(answer).get("refresh_token") if status == 200 else None
    except (OSError, HTTPException, ValueError) as error:
        raise LoadError(f"code redemption on port {port} failed: {error}") from error
    if not isinstance(token, str):
        raise LoadError(
            f"code redemption on port {port} gave no refresh token: {status} {answer[:300]!r}"
        )
    return token


def write_lines(path: Path, values: list[str]) -> Path:
    path.write_text("\n".join(values) + "\n")
    return path


PASSWORD = "bench password, not a secret"
LOGIN_CONCURRENCY = 20


def logins_beside(load: Load, port: int, party: SignInParty) -> Load:
    """``load`` with LOGIN_CONCURRENCY browsers logging in as the party's user beside it."""
    command = (
        sys.executable, "-m", "harness.logins", "--port", str(port),
        "--client-id", party.client_id, "--username", party.username,
        "--concurrency", str(LOGIN_CONCURRENCY),
    )  # fmt: skip
    return replace(load, background=command, background_input=PASSWORD + "\n")


def code_load(path: str, codes_file: Path, client_id: str) -> Load:
    env = {
        "BENCH_CODES_FILE": str(codes_file),
        "BENCH_CLIENT_ID": client_id,
        "BENCH_REDIRECT_URI": REDIRECT_URI,
        "BENCH_CODE_VERIFIER": VERIFIER,
    }
    return Load("code_each.lua", path, env, single_use=True)


def refresh_load(path: str, tokens_file: Path, client_id: str) -> Load:
    env = {"BENCH_TOKENS_FILE": str(tokens_file), "BENCH_CLIENT_ID": client_id}
    return Load("refresh_chain.lua", path, env, single_use=True)


def codes_needed(duration_s: int) -> int:
    return CODES_PER_SECOND * duration_s
