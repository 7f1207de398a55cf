"""Helpers shared by the tests: credentials, tokens, and polling with a deadline."""

from __future__ import annotations

import asyncio
import base64
import inspect
import time
from collections.abc import Awaitable, Callable
from urllib.parse import quote

import httpx

from oauth_server.clock import Clock
from oauth_server.crypto import new_split_token
from oauth_server.oauth.tokens.format import PREFIXES, TokenCodec
from oauth_server.services import Services
from oauth_server.storage import AccessTokenRecord
from oauth_server.web.api import FastRouter

SEED_TOKEN_REQUEST = {
    "client_id": "admin",
    "client_secret": "getroot",
    "grant_type": "client_credentials",
    "scope": "restaurent",
}
DEMO_ID = "5f1a2b3c4d5e6f7a8b9c0d01"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
FORM = {"Content-Type": FORM_CONTENT_TYPE}


TEST_SECRET_KEY = b"test-secret-key-of-at-least-32-characters"


def token_codec(clock: Clock, *, accept_legacy: bool = True) -> TokenCodec:
    """The codec of core objects built by hand in the tests. Legacy-format tokens stay
    acceptable for a century, so a test's token made at any clock time is looked up; the window
    itself is tested in tests/unit/test_token_format.py."""
    return TokenCodec(
        TEST_SECRET_KEY,
        clock=clock,
        legacy_max_age=dict.fromkeys(PREFIXES, 100 * 366 * 86_400),
        accept_legacy=accept_legacy,
    )


def opaque_parts(value: str) -> tuple[str, bytes]:
    """``(prefix, raw bytes)`` of an opaque token of either format (prefix ``""``: legacy)."""
    prefix = next((p for p in PREFIXES.values() if value.startswith(p)), "")
    body = value[len(prefix) :]
    return prefix, base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))


def with_secret(value: str, secret: bytes, codec: TokenCodec | None = None) -> str:
    """``value`` (either format) with its secret part replaced. A checksummed token keeps its
    old checksum, which then fails — unless ``codec`` is given: it recomputes the checksum, as
    only the server can, so the forgery reaches the secret's comparison in storage."""
    prefix, raw = opaque_parts(value)
    selector = raw[:12]
    if prefix:
        checksum = raw[44:]
        if codec is not None:
            checksum = codec._checksum(prefix.encode(), selector + secret)
        raw = selector + secret + checksum
    else:
        raw = selector + secret
    return prefix + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def secret_of(value: str) -> bytes:
    """The 32-byte secret part of an opaque token of either format."""
    return opaque_parts(value)[1][12:44]


def cli_env(database_url: str) -> dict[str, str]:
    """The environment of an ``oauth-server`` command on ``database_url``."""
    return {
        "OAUTH_SERVER_DATABASE_URL": database_url,
        "OAUTH_SERVER_SECRET_KEY": "test-secret-key-of-at-least-32-characters",
    }


def app_services(app: FastRouter) -> Services:
    """The services of a started app (``create_app`` inside ``lifespan``)."""
    services: Services = app.state.services
    return services


def token_record(now: float = 10.0, **fields: object) -> AccessTokenRecord:
    """An opaque token's row: a fresh selector (from ``now``) and the given fields."""
    split = new_split_token(now)
    values: dict[str, object] = {
        "client_id": "c1",
        "subject": "c1",
        "scope": "a b",
        "issued_at": 10,
        "expires_at": 20,
        "audience": "https://rs",
    }
    values.update(fields)
    return AccessTokenRecord(split.selector, split.verifier_hash, **values)  # type: ignore[arg-type]


def basic(client_id: str, secret: str) -> str:
    raw = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
    return "Basic " + base64.b64encode(raw).decode()


async def seed_token(http: httpx.AsyncClient, scope: str = "restaurent") -> str:
    response = await http.post("/oauth/token", json={**SEED_TOKEN_REQUEST, "scope": scope})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def eventually(
    check: Callable[[], bool | Awaitable[bool]], *, within: float = 10.0, interval: float = 0.05
) -> float:
    """Poll ``check`` (a function or a coroutine function) until it is true; return how long
    that took, or fail after ``within`` seconds. The one way a test waits for something to
    happen: never a fixed sleep."""
    start = time.monotonic()
    while True:
        outcome = check()
        if inspect.isawaitable(outcome):
            outcome = await outcome
        if outcome:
            return time.monotonic() - start
        if time.monotonic() - start > within:
            raise AssertionError(f"condition not reached within {within} s")
        await asyncio.sleep(interval)


# Settings of the tests that run two server processes on one database.
MULTI_INSTANCE_ENV = {
    "OAUTH_SERVER_SECRET_KEY": "multi-instance-test-secret-0123456789",
    "OAUTH_SERVER_KEY_PUBLISH_LEAD": "2",
    "OAUTH_SERVER_CACHE_SYNC_INTERVAL": "0.2",
    # Both instances must agree on the issuer: it is in every token.
    "OAUTH_SERVER_ISSUER": "http://auth.test",
}
