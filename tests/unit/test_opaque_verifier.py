"""OpaqueTokenVerifier: split tokens checked against the store, through its cache.

The secret part is compared before anything about the row is told: a wrong, truncated or
borrowed secret is refused exactly like an unknown token, for live, revoked and expired rows
alike (issue 14). Then revocation, expiry (injected clock), the lifetime cap and the client's
cutoff; and a lookup in flight during a revocation never caches the stale row.
"""

from __future__ import annotations

import asyncio
import base64
import functools
from dataclasses import replace

import pytest

from oauth_server.cache import TTLCache
from oauth_server.clock import FrozenClock
from oauth_server.crypto import SplitToken, new_split_token
from oauth_server.errors import InvalidToken
from oauth_server.oauth.tokens.verify.opaque import OpaqueTokenVerifier
from oauth_server.oauth.tokens.verify.revocation import RevokedClients
from oauth_server.storage.models import AccessTokenRecord, Change
from tests.fakes import MemoryTokens
from tests.helpers import token_codec

ISSUER = "https://as.example"
NOW = 1_800_000_000


class CountingTokens(MemoryTokens):
    """Counts reads; while ``gate`` is set, a read waits for it after fetching the row (a
    lookup in flight)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.gate: asyncio.Event | None = None
        self.reading = asyncio.Event()

    async def get(self, *, selector: bytes) -> AccessTokenRecord | None:
        self.reads += 1
        row = self.rows.get(selector)
        self.reading.set()
        if self.gate is not None:
            await self.gate.wait()
        return row


@pytest.fixture
def clock_at_now() -> FrozenClock:
    return FrozenClock(float(NOW))


@pytest.fixture
def tokens() -> CountingTokens:
    return CountingTokens()


@pytest.fixture
def clients(clock_at_now: FrozenClock) -> RevokedClients:
    return RevokedClients(clock=clock_at_now, max_token_age=3660)


@pytest.fixture
def verifier(
    tokens: CountingTokens, clock_at_now: FrozenClock, clients: RevokedClients
) -> OpaqueTokenVerifier:
    return OpaqueTokenVerifier(
        tokens,
        codec=token_codec(clock_at_now),
        issuer=ISSUER,
        clock=clock_at_now,
        revoked_clients=clients,
        max_lifetime=3600,
    )


async def issue(
    tokens: MemoryTokens, *, client_id: str = "app", ttl: int = 3600, issued_at: int = NOW
) -> SplitToken:
    split = new_split_token(float(issued_at))
    await tokens.add(
        token=AccessTokenRecord(
            selector=split.selector,
            verifier_hash=split.verifier_hash,
            client_id=client_id,
            subject=client_id,
            scope="restaurants:read restaurent",
            issued_at=issued_at,
            expires_at=issued_at + ttl,
            audience="https://rs.example",
        )
    )
    return split


def with_secret(token: str, secret: bytes) -> str:
    """``token``'s selector followed by another secret part."""
    raw = base64.urlsafe_b64decode(token + "=")
    return base64.urlsafe_b64encode(raw[:12] + secret).rstrip(b"=").decode()


async def refusal(verifier: OpaqueTokenVerifier, token: str) -> str:
    with pytest.raises(InvalidToken) as caught:
        await verifier.verify(token)
    return str(caught.value.description)


async def test_a_genuine_token_gives_its_claims(
    verifier: OpaqueTokenVerifier, tokens: CountingTokens
) -> None:
    token = await issue(tokens)
    claims = await verifier.verify(token.value)
    assert (claims.client_id, claims.subject, claims.issuer) == ("app", "app", ISSUER)
    assert claims.scope == {"restaurants:read", "restaurent"}
    assert claims.scope_text == "restaurants:read restaurent"
    assert (claims.issued_at, claims.expires_at) == (NOW, NOW + 3600)
    assert claims.audience == ("https://rs.example",)
    assert (claims.jti, claims.token_format) == (None, "opaque")
    await verifier.verify(token.value)
    assert tokens.reads == 1  # the second use came from the cache


@pytest.mark.parametrize("state", ["live", "revoked", "expired", "cached"])
async def test_a_wrong_secret_is_refused_exactly_like_an_unknown_token(
    verifier: OpaqueTokenVerifier, tokens: CountingTokens, clock_at_now: FrozenClock, state: str
) -> None:
    """Issue 14 item 1 (and issue 8 finding 8: the selector alone must not tell that the token
    was revoked): wrong, truncated and another token's secret, on every kind of row."""
    unknown = await refusal(verifier, new_split_token(float(NOW)).value)
    token = (await issue(tokens, ttl=60)).value
    other = (await issue(tokens)).value
    if state == "revoked":
        await tokens.revoke(selector=new_selector(token), now=NOW)
    elif state == "expired":
        clock_at_now.advance(61)
    elif state == "cached":
        await verifier.verify(token)
    forged = {
        "wrong secret": with_secret(token, b"\x00" * 32),
        "another token's secret": with_secret(token, base64.urlsafe_b64decode(other + "=")[12:]),
        "secret with one bit flipped": flip_last_secret_bit(token),
        "truncated": token[:-1],
        "selector only": token[:16],
        "extended": token + "A",
    }
    for name, value in forged.items():
        assert await refusal(verifier, value) == unknown, name
    assert unknown == "the access token is not valid"


def new_selector(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=")[:12]


def flip_last_secret_bit(token: str) -> str:
    raw = bytearray(base64.urlsafe_b64decode(token + "="))
    raw[-1] ^= 1
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


async def test_revoked_token_with_its_secret_is_refused_as_revoked(
    verifier: OpaqueTokenVerifier, tokens: CountingTokens
) -> None:
    token = await issue(tokens)
    await tokens.revoke(selector=token.selector, now=NOW)
    assert await refusal(verifier, token.value) == "the access token was revoked"
    assert await refusal(verifier, token.value) == "the access token was revoked"
    assert tokens.reads == 1  # a revoked row is remembered too: its reuse costs no read


async def test_expired_tokens_are_refused_by_the_injected_clock(
    verifier: OpaqueTokenVerifier, tokens: CountingTokens, clock_at_now: FrozenClock
) -> None:
    fresh = await issue(tokens, ttl=120)
    cached = await issue(tokens, ttl=60)
    await verifier.verify(cached.value)  # cached before it expires
    clock_at_now.advance(59)
    await verifier.verify(cached.value)
    clock_at_now.advance(1)  # exactly at exp: expired (RFC 7519 §4.1.4, "on or after")
    assert await refusal(verifier, cached.value) == "the access token has expired"
    await verifier.verify(fresh.value)
    clock_at_now.advance(60)
    assert await refusal(verifier, fresh.value) == "the access token has expired"


async def test_a_lifetime_beyond_the_maximum_is_refused(
    verifier: OpaqueTokenVerifier, tokens: CountingTokens
) -> None:
    await verifier.verify((await issue(tokens, ttl=3600)).value)
    long_lived = await issue(tokens, ttl=3601)
    assert "maximum" in await refusal(verifier, long_lived.value)


async def test_client_cutoff_voids_tokens_issued_up_to_it(
    verifier: OpaqueTokenVerifier,
    tokens: CountingTokens,
    clients: RevokedClients,
    clock_at_now: FrozenClock,
) -> None:
    earlier = await issue(tokens, issued_at=NOW - 10)
    same_second = await issue(tokens)
    others = await issue(tokens, client_id="other")
    await verifier.verify(earlier.value)  # cached: the cutoff applies to cached rows too
    clients.on_change(Change(change_id=1, kind="client_tokens", key=f"{NOW} app"))
    for token in (earlier, same_second):
        assert await refusal(verifier, token.value) == "the access token was revoked"
    await verifier.verify(others.value)
    clock_at_now.advance(1)
    assert (await verifier.verify((await issue(tokens, issued_at=NOW + 1)).value)).client_id


async def test_a_lookup_in_flight_during_a_revocation_is_not_cached(
    verifier: OpaqueTokenVerifier, tokens: CountingTokens
) -> None:
    """Issue 8 finding 8: the row read before the revocation must not be remembered after it."""
    token = await issue(tokens)
    tokens.gate = asyncio.Event()
    in_flight = asyncio.create_task(verifier.verify(token.value))
    await tokens.reading.wait()
    # The revocation commits, and its change-feed entry arrives, while the read is in flight.
    tokens.rows[token.selector] = replace(tokens.rows[token.selector], revoked_at=NOW)
    verifier.on_change(Change(change_id=1, kind="token", key=token.selector.hex()))
    tokens.gate.set()
    tokens.gate = None
    await in_flight  # it read the row before the revocation: answered once, from that read
    assert await refusal(verifier, token.value) == "the access token was revoked"
    assert tokens.reads == 2


async def test_unknown_selectors_are_never_cached(
    verifier: OpaqueTokenVerifier, tokens: CountingTokens
) -> None:
    late = new_split_token(float(NOW))
    await refusal(verifier, late.value)
    await tokens.add(
        token=AccessTokenRecord(late.selector, late.verifier_hash, "app", "app", "a", NOW, NOW + 60)
    )
    assert (await verifier.verify(late.value)).client_id == "app"  # issued elsewhere meanwhile


async def test_the_cache_is_not_trusted_while_the_change_feed_is_not_read(
    tokens: CountingTokens, clock_at_now: FrozenClock
) -> None:
    """Issue 12 claim 1: with the database cut, a cached opaque token went on introspecting as
    active although it may have been revoked elsewhere. While the feed is not current, every
    use reads the row (and fails with the database)."""
    current = [True]
    verifier = OpaqueTokenVerifier(
        tokens,
        codec=token_codec(clock_at_now),
        issuer=ISSUER,
        clock=clock_at_now,
        feed_current=lambda: current[0],
    )
    token = await issue(tokens)
    await verifier.verify(token.value)
    await verifier.verify(token.value)
    assert tokens.reads == 1
    current[0] = False
    # Revoked elsewhere; the feed entry that would evict it never arrives.
    await tokens.revoke(selector=token.selector, now=NOW)
    assert await refusal(verifier, token.value) == "the access token was revoked"
    assert tokens.reads == 2


async def test_a_found_row_is_remembered_for_five_minutes_at_most(
    tokens: CountingTokens,
    clock_at_now: FrozenClock,
    clients: RevokedClients,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """README: an opaque token is checked against the database the first time an instance
    meets it, then remembered for up to five minutes (even if it lives an hour)."""
    elapsed = [0.0]
    monkeypatch.setattr(
        "oauth_server.oauth.tokens.verify.opaque.TTLCache",
        functools.partial(TTLCache, monotonic=lambda: elapsed[0]),
    )
    verifier = OpaqueTokenVerifier(
        tokens,
        codec=token_codec(clock_at_now),
        issuer=ISSUER,
        clock=clock_at_now,
        revoked_clients=clients,
    )
    token = (await issue(tokens, ttl=3600)).value
    await verifier.verify(token)
    assert tokens.reads == 1
    elapsed[0] = 299.0
    await verifier.verify(token)
    assert tokens.reads == 1  # from memory
    elapsed[0] = 300.0
    await verifier.verify(token)
    assert tokens.reads == 2  # five minutes on: read again
