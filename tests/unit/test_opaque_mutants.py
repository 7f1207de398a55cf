"""Opaque-token verification and the format dispatch, case by case (kills the mutants of
``oauth/tokens/verify/opaque.py`` and ``oauth/tokens/verify/any_format.py``; see ``make mutate``).

A token whose selector is real but whose secret part is wrong is refused exactly like an unknown
token: same error, same description, no hint that it exists, was revoked or has expired.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import replace

import pytest

from oauth_server.cache import TTLCache
from oauth_server.clock import FrozenClock
from oauth_server.crypto import SELECTOR_BYTES, new_split_token
from oauth_server.errors import InvalidToken
from oauth_server.oauth.tokens.verify.any_format import AnyTokenVerifier
from oauth_server.oauth.tokens.verify.claims import AccessClaims
from oauth_server.oauth.tokens.verify.opaque import OpaqueTokenVerifier
from oauth_server.storage.models import AccessTokenRecord, Change
from tests.fakes import MemoryTokens
from tests.helpers import token_codec

ISSUER = "https://as.example"
NOW = 1_800_000_000
NOT_VALID = "the access token is not valid"


class CountingTokens(MemoryTokens):
    def __init__(self) -> None:
        super().__init__()
        self.lookups = 0

    async def get(self, *, selector: bytes) -> AccessTokenRecord | None:
        self.lookups += 1
        return await super().get(selector=selector)


@pytest.fixture
def clock_at_now() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
def tokens() -> CountingTokens:
    return CountingTokens()


@pytest.fixture
def verifier(tokens: CountingTokens, clock_at_now: FrozenClock) -> OpaqueTokenVerifier:
    verifier = OpaqueTokenVerifier(
        tokens, codec=token_codec(clock_at_now), issuer=ISSUER, clock=clock_at_now
    )
    # The cache's own clock follows the test's, so cache lifetimes can be stepped through.
    verifier._cache = TTLCache(max_entries=100, monotonic=clock_at_now.now)
    return verifier


def store(
    tokens: MemoryTokens,
    *,
    ttl: int = 3600,
    client_id: str = "app",
    scope: str = "b a",
    audience: str = "https://api.example https://other.example",
) -> str:
    split = new_split_token(NOW)
    tokens.rows[split.selector] = AccessTokenRecord(
        selector=split.selector,
        verifier_hash=split.verifier_hash,
        client_id=client_id,
        subject=f"{client_id}-subject",
        scope=scope,
        issued_at=NOW,
        expires_at=NOW + ttl,
        audience=audience,
    )
    return split.value


def other_secret(token: str, *, flip: int = -2) -> str:
    """The same selector with a different (well-formed) secret part."""
    raw = bytearray(base64.urlsafe_b64decode(token + "="))
    raw[flip] ^= 0x01
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


async def refused(verifier: OpaqueTokenVerifier, token: str) -> str | None:
    with pytest.raises(InvalidToken) as caught:
        await verifier.verify(token)
    return caught.value.description


async def test_a_valid_token_gives_every_claim(
    verifier: OpaqueTokenVerifier, tokens: CountingTokens
) -> None:
    token = store(tokens)
    assert await verifier.verify(token) == AccessClaims(
        client_id="app",
        subject="app-subject",
        scope=frozenset({"a", "b"}),
        issued_at=NOW,
        expires_at=NOW + 3600,
        audience=("https://api.example", "https://other.example"),
        issuer=ISSUER,
        jti=None,
        not_before=None,
        scope_text="b a",
        token_format="opaque",
    )


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "cached"])
async def test_a_wrong_secret_is_refused_like_an_unknown_token(
    verifier: OpaqueTokenVerifier, tokens: CountingTokens, warm: bool
) -> None:
    token = store(tokens)
    another = store(tokens)
    if warm:
        await verifier.verify(token)
    unknown = await refused(verifier, new_split_token(NOW).value)
    selector_part = token[: SELECTOR_BYTES * 4 // 3]
    wrong = [
        other_secret(token),
        other_secret(token, flip=SELECTOR_BYTES),  # first byte of the secret part
        selector_part + another[len(selector_part) :],  # another token's secret
    ]
    for candidate in wrong:
        assert candidate != token
        assert await refused(verifier, candidate) == unknown == NOT_VALID
    # Truncated or padded forms never reach the store.
    for candidate in (token[:-1], token + "A", token[: len(selector_part)]):
        assert await refused(verifier, candidate) == NOT_VALID
    # The real token still works after all of that.
    assert (await verifier.verify(token)).client_id == "app"


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "cached"])
@pytest.mark.parametrize("state", ["revoked", "expired"])
async def test_a_wrong_secret_learns_nothing_about_a_revoked_or_expired_row(
    verifier: OpaqueTokenVerifier,
    tokens: CountingTokens,
    clock_at_now: FrozenClock,
    warm: bool,
    state: str,
) -> None:
    # The secret is compared first: only its holder is told "revoked" or "expired".
    token = store(tokens, ttl=600)
    another = store(tokens)
    selector = next(iter(tokens.rows))
    if state == "revoked":
        await tokens.revoke(selector=selector, now=NOW)
        told = "the access token was revoked"
    else:
        clock_at_now.advance(600)
        told = "the access token has expired"
    if warm:
        assert await refused(verifier, token) == told
    selector_part = token[: SELECTOR_BYTES * 4 // 3]
    for candidate in (
        other_secret(token),
        other_secret(token, flip=SELECTOR_BYTES),
        selector_part + another[len(selector_part) :],
    ):
        assert await refused(verifier, candidate) == NOT_VALID
    assert await refused(verifier, token) == told


async def test_expiry_is_exact_to_the_second(
    verifier: OpaqueTokenVerifier, tokens: CountingTokens, clock_at_now: FrozenClock
) -> None:
    token = store(tokens, ttl=600)
    clock_at_now.advance(599)
    assert (await verifier.verify(token)).expires_at == NOW + 600
    clock_at_now.advance(1)
    assert await refused(verifier, token) == "the access token has expired"


async def test_expired_when_first_seen(
    verifier: OpaqueTokenVerifier, tokens: CountingTokens, clock_at_now: FrozenClock
) -> None:
    token = store(tokens, ttl=10)
    clock_at_now.advance(10)
    assert await refused(verifier, token) == "the access token has expired"


async def test_a_revoked_token_is_refused(
    verifier: OpaqueTokenVerifier, tokens: CountingTokens
) -> None:
    token = store(tokens)
    selector = next(iter(tokens.rows))
    await tokens.revoke(selector=selector, now=NOW)
    assert await refused(verifier, token) == "the access token was revoked"


async def test_found_rows_are_cached_by_selector_not_unknown_ones(
    verifier: OpaqueTokenVerifier, tokens: CountingTokens
) -> None:
    token = store(tokens)
    await verifier.verify(token)
    await verifier.verify(token)
    await refused(verifier, other_secret(token))  # same selector: answered from the cache
    assert tokens.lookups == 1
    unknown = new_split_token(NOW)
    await refused(verifier, unknown.value)
    await refused(verifier, unknown.value)
    assert tokens.lookups == 3


async def test_the_cache_lasts_five_minutes_at_most(
    verifier: OpaqueTokenVerifier, tokens: CountingTokens, clock_at_now: FrozenClock
) -> None:
    token = store(tokens)
    await verifier.verify(token)
    clock_at_now.advance(299)
    await verifier.verify(token)
    assert tokens.lookups == 1
    clock_at_now.advance(1)
    await verifier.verify(token)
    assert tokens.lookups == 2


async def test_the_cache_lasts_no_longer_than_the_token(
    verifier: OpaqueTokenVerifier, tokens: CountingTokens, clock_at_now: FrozenClock
) -> None:
    token = store(tokens, ttl=100)
    clock_at_now.advance(40)
    await verifier.verify(token)
    clock_at_now.advance(59)
    await verifier.verify(token)
    assert tokens.lookups == 1
    # Revoked in the store meanwhile, unseen by this process: once the entry is gone the row is
    # read again (the expiry check alone would say "expired").
    await tokens.revoke(selector=next(iter(tokens.rows)), now=NOW)
    clock_at_now.advance(1)
    assert await refused(verifier, token) == "the access token was revoked"
    assert tokens.lookups == 2


async def test_forget_and_feed_changes_evict(
    verifier: OpaqueTokenVerifier, tokens: CountingTokens
) -> None:
    token = store(tokens)
    selector = next(iter(tokens.rows))
    await verifier.verify(token)
    tokens.rows[selector] = replace(tokens.rows[selector], revoked_at=NOW)
    assert (await verifier.verify(token)).client_id == "app"  # still cached
    verifier.on_change(Change(change_id=1, kind="token", key="not hex"))  # ignored
    verifier.on_change(Change(change_id=2, kind="token", key=(b"x" * 12).hex()))  # not ours
    assert (await verifier.verify(token)).client_id == "app"
    verifier.on_change(Change(change_id=3, kind="token", key=selector.hex()))
    assert await refused(verifier, token) == "the access token was revoked"
    assert tokens.lookups == 2
    # The revoked row is remembered too (a revoked token costs no database read either).
    tokens.rows[selector] = replace(tokens.rows[selector], revoked_at=None)
    assert await refused(verifier, token) == "the access token was revoked"
    assert tokens.lookups == 2
    verifier.forget(selector)  # the row is read again
    assert (await verifier.verify(token)).client_id == "app"
    assert tokens.lookups == 3
    tokens.rows[selector] = replace(tokens.rows[selector], revoked_at=NOW)
    verifier.forget(selector)
    assert await refused(verifier, token) == "the access token was revoked"
    assert tokens.lookups == 4


def test_the_default_cache_is_large() -> None:
    verifier = OpaqueTokenVerifier(
        MemoryTokens(), codec=token_codec(FrozenClock(NOW)), issuer=ISSUER, clock=FrozenClock(NOW)
    )
    assert verifier._cache._max_entries == 100_000


class Recording:
    def __init__(self, name: str) -> None:
        self.name = name
        self.seen: list[str] = []

    async def verify(self, token: str) -> AccessClaims:
        self.seen.append(token)
        return AccessClaims(
            client_id=self.name, subject="s", scope=frozenset(), issued_at=0, expires_at=1
        )


@pytest.mark.parametrize(
    ("token", "expected"),
    [("a.b.c", "jwt"), ("abc", "opaque"), ("a.b", "opaque"), ("a.b.c.d", "opaque")],
)
async def test_the_token_shape_picks_the_verifier(token: str, expected: str) -> None:
    jwt, opaque = Recording("jwt"), Recording("opaque")
    claims = await AnyTokenVerifier(jwt=jwt, opaque=opaque).verify(token)
    assert claims.client_id == expected
    assert (jwt.seen, opaque.seen) == (([token], []) if expected == "jwt" else ([], [token]))


async def test_without_opaque_tokens_everything_goes_to_the_jwt_verifier() -> None:
    jwt = Recording("jwt")
    claims = await AnyTokenVerifier(jwt=jwt, opaque=None).verify("abc")
    assert (claims.client_id, jwt.seen) == ("jwt", ["abc"])


async def test_a_lifetime_over_the_cap_is_refused_by_name(
    tokens: CountingTokens, clock_at_now: FrozenClock
) -> None:
    capped = OpaqueTokenVerifier(
        tokens, codec=token_codec(clock_at_now), issuer=ISSUER, clock=clock_at_now, max_lifetime=600
    )
    assert (await capped.verify(store(tokens, ttl=600))).expires_at == NOW + 600
    assert await refused(capped, store(tokens, ttl=601)) == (
        "the access token's lifetime exceeds the server's maximum"
    )


class GatedTokens(CountingTokens):
    """A read that waits, after fetching the row, until ``gate`` is set (a lookup in flight)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.reading = asyncio.Event()

    async def get(self, *, selector: bytes) -> AccessTokenRecord | None:
        row = await super().get(selector=selector)
        self.reading.set()
        await self.gate.wait()
        return row


async def test_every_eviction_during_a_lookup_keeps_its_row_out_of_the_cache(
    clock_at_now: FrozenClock,
) -> None:
    # Not only the first one: an earlier eviction must not make the next one count for less.
    tokens = GatedTokens()
    verifier = OpaqueTokenVerifier(
        tokens, codec=token_codec(clock_at_now), issuer=ISSUER, clock=clock_at_now
    )
    token = store(tokens)
    selector = next(iter(tokens.rows))
    verifier.forget(selector)  # an earlier, unrelated eviction
    in_flight = asyncio.create_task(verifier.verify(token))
    await tokens.reading.wait()
    tokens.rows[selector] = replace(tokens.rows[selector], revoked_at=NOW)
    verifier.forget(selector)  # the revocation, while the row is being read
    tokens.gate.set()
    assert (await in_flight).client_id == "app"  # read before the revocation: answered once
    assert await refused(verifier, token) == "the access token was revoked"
    assert tokens.lookups == 2


async def test_a_token_the_server_never_minted_is_refused_without_a_lookup(
    verifier: OpaqueTokenVerifier, tokens: CountingTokens, clock_at_now: FrozenClock
) -> None:
    """Issue 11 item 3: the checksummed format lets the verifier refuse garbage unread, with
    the unknown token's description; a minted, stored token still verifies (and is read)."""
    codec = token_codec(clock_at_now)
    split = codec.mint("access_token", NOW)
    tokens.rows[split.selector] = AccessTokenRecord(
        selector=split.selector,
        verifier_hash=split.verifier_hash,
        client_id="app",
        subject="app",
        scope="a",
        issued_at=NOW,
        expires_at=NOW + 60,
        audience="https://api.example",
    )
    value = split.value
    garbage = [
        value[:-1],
        value[:-2] + ("A" if value[-2] != "A" else "B") + value[-1],  # in the checksum
        value[:30] + ("A" if value[30] != "A" else "B") + value[31:],  # in the secret
        "pos_rt_" + value[len("pos_at_") :],  # another kind's prefix
        codec.mint("refresh_token", NOW).value,  # another kind's token
    ]
    for forged in garbage:
        assert await refused(verifier, forged) == NOT_VALID, forged
        assert await verifier.find(forged) is None, forged
    assert tokens.lookups == 0
    assert (await verifier.verify(value)).client_id == "app"
    found = await verifier.find(value)
    assert found is not None
    assert found.selector == split.selector
    assert tokens.lookups == 2
