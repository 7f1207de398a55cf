"""The JWT verifier's every check, with the exact reason and boundary (kills the mutants of
``resource/jwt.py``; see ``make mutate``). The forgeries themselves are in
``test_jwt_verifier.py``; here each one must fail for the reason that names its flaw."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from joserfc import jws

from oauth_server.cache import TTLCache
from oauth_server.clock import FrozenClock
from oauth_server.errors import InvalidToken
from oauth_server.oauth.keys import LoadedKey
from oauth_server.oauth.tokens.verify.claims import MAX_TOKEN_LENGTH, AccessClaims
from oauth_server.oauth.tokens.verify.jwt import JwtVerifier
from oauth_server.oauth.tokens.verify.revocation import RevokedClients, RevokedJtis
from tests.jwt_forgeries import (
    CLAIMS,
    FORGERIES,
    HEADER,
    ISSUER,
    KEY,
    NOW,
    StaticKeys,
    sign,
)

MALFORMED = "the access token is malformed or its signature is invalid"
WHY: dict[str, str] = {
    "alg none": MALFORMED,
    "HS256 signed with the public key": MALFORMED,
    "embedded jwk": "the token header must not contain jwk",
    "jku": "the token header must not contain jku",
    "x5u": "the token header must not contain x5u",
    "x5c": "the token header must not contain x5c",
    "other key, same kid": MALFORMED,
    "unknown kid": "the access token was signed with an unknown key",
    "no kid": "the token's algorithm or key id is not accepted",
    "crit": MALFORMED,
    "typ JWT": "the token is not a JWT access token (typ)",
    "no typ": "the token is not a JWT access token (typ)",
    "alg differs from the key's": "the token's algorithm does not match its key",
    "tampered claims": MALFORMED,
    "truncated signature": MALFORMED,
    "two segments": MALFORMED,
    "garbage": MALFORMED,
    "oversized": "the access token is too long",
    "other issuer": "the access token was issued by someone else",
    "expired": "the access token has expired",
    "not yet valid": "the access token is not valid yet",
    "string exp": "the access token's time claims are malformed",
    "boolean iat": "the access token's time claims are malformed",
    "no jti": "the access token lacks jti, sub or client_id",
    "no client_id": "the access token lacks jti, sub or client_id",
    "no aud": "the access token has no audience",
    "numeric scope": "the access token's scope is malformed",
}


def signed_payload(payload: bytes, key: LoadedKey = KEY) -> str:
    return jws.serialize_compact(HEADER, payload, key.key, algorithms=[key.alg])


MORE: dict[str, tuple[Callable[[], str], str]] = {
    "payload not JSON": (
        lambda: signed_payload(b"not json"),
        "the access token's claims are not JSON",
    ),
    "payload a list": (
        lambda: signed_payload(b"[1, 2]"),
        "the access token's claims are not an object",
    ),
    "no iat": (
        lambda: sign(claims={k: v for k, v in CLAIMS.items() if k != "iat"}),
        "the access token's time claims are malformed",
    ),
    "string nbf": (
        lambda: sign(claims={**CLAIMS, "nbf": "soon"}),
        "the access token's time claims are malformed",
    ),
    "numeric aud": (lambda: sign(claims={**CLAIMS, "aud": 5}), "the access token has no audience"),
    "empty aud list": (
        lambda: sign(claims={**CLAIMS, "aud": []}),
        "the access token has no audience",
    ),
    "aud list with a number": (
        lambda: sign(claims={**CLAIMS, "aud": ["https://rs.example", 5]}),
        "the access token has no audience",
    ),
    "empty jti": (
        lambda: sign(claims={**CLAIMS, "jti": ""}),
        "the access token lacks jti, sub or client_id",
    ),
    "numeric sub": (
        lambda: sign(claims={**CLAIMS, "sub": 5}),
        "the access token lacks jti, sub or client_id",
    ),
    "no sub": (
        lambda: sign(claims={k: v for k, v in CLAIMS.items() if k != "sub"}),
        "the access token lacks jti, sub or client_id",
    ),
    "exactly at the leeway": (
        lambda: sign(claims={**CLAIMS, "exp": NOW - 30}),
        "the access token has expired",
    ),
    "long garbage": (lambda: "x" * (MAX_TOKEN_LENGTH - 2) + "..", MALFORMED),
    "iat beyond the leeway": (
        lambda: sign(claims={**CLAIMS, "iat": NOW + 31}),
        "the access token was issued in the future",
    ),
}


@pytest.fixture
def keys() -> StaticKeys:
    return StaticKeys(KEY)


@pytest.fixture
def revoked() -> RevokedJtis:
    return RevokedJtis(clock=FrozenClock(NOW), max_token_ttl=3600)


@pytest.fixture
def verifier(keys: StaticKeys, revoked: RevokedJtis) -> JwtVerifier:
    return JwtVerifier(keys, issuer=ISSUER, clock=FrozenClock(NOW), leeway=30, revoked=revoked)


async def reason(verifier: JwtVerifier, token: str) -> str | None:
    with pytest.raises(InvalidToken) as caught:
        await verifier.verify(token)
    return caught.value.description


@pytest.mark.parametrize("name", FORGERIES)
async def test_each_forgery_fails_for_its_own_reason(verifier: JwtVerifier, name: str) -> None:
    assert await reason(verifier, FORGERIES[name]()) == WHY[name]


@pytest.mark.parametrize("name", MORE)
async def test_each_malformed_claim_fails_for_its_own_reason(
    verifier: JwtVerifier, name: str
) -> None:
    forge, why = MORE[name]
    assert await reason(verifier, forge()) == why


async def test_every_claim_is_carried_over(verifier: JwtVerifier) -> None:
    token = sign(claims={**CLAIMS, "aud": ["https://a.example", "https://b.example"], "nbf": NOW})
    assert await verifier.verify(token) == AccessClaims(
        client_id="app",
        subject="app",
        scope=frozenset({"a", "b"}),
        issued_at=NOW,
        expires_at=NOW + 3600,
        audience=("https://a.example", "https://b.example"),
        issuer=ISSUER,
        jti="jti-1",
        not_before=NOW,
        scope_text="a b",
        token_format="jwt",
    )


async def test_no_scope_is_the_empty_scope(verifier: JwtVerifier) -> None:
    claims = await verifier.verify(sign(claims={k: v for k, v in CLAIMS.items() if k != "scope"}))
    assert (claims.scope, claims.scope_text) == (frozenset(), "")


async def test_nbf_at_the_leeway_is_accepted(verifier: JwtVerifier) -> None:
    assert (await verifier.verify(sign(claims={**CLAIMS, "nbf": NOW + 30}))).not_before == NOW + 30


async def test_the_default_leeway_is_thirty_seconds(keys: StaticKeys) -> None:
    verifier = JwtVerifier(keys, issuer=ISSUER, clock=FrozenClock(NOW))
    await verifier.verify(sign(claims={**CLAIMS, "exp": NOW - 29}))
    assert await reason(verifier, sign(claims={**CLAIMS, "exp": NOW - 30})) == (
        "the access token has expired"
    )
    assert verifier._cache._max_entries == 100_000


class TimedKeys(StaticKeys):
    """Keys that say which time they were asked about."""

    def __init__(self, *keys: LoadedKey) -> None:
        super().__init__(*keys)
        self.asked: list[float] = []

    def verification_key(self, kid: str, now: float) -> LoadedKey | None:
        self.asked.append(now)
        return super().verification_key(kid, now)


async def test_keys_are_chosen_for_the_current_time() -> None:
    keys = TimedKeys(KEY)
    verifier = JwtVerifier(keys, issuer=ISSUER, clock=FrozenClock(NOW + 5))
    await verifier.verify(sign())
    assert keys.asked == [NOW + 5]
    keys.keys.clear()
    keys.pending = {KEY.kid: KEY}
    verifier.clear_cache()
    await verifier.verify(sign())  # found after the one reload
    assert keys.asked == [NOW + 5, NOW + 5, NOW + 5]


async def test_unknown_key_after_a_reload_that_did_not_help(keys: StaticKeys) -> None:
    verifier = JwtVerifier(keys, issuer=ISSUER, clock=FrozenClock(NOW))
    keys.keys.clear()  # the reload happens (first one) but brings nothing
    assert await reason(verifier, sign()) == "the access token was signed with an unknown key"
    assert keys.reloads == 1


async def test_a_verified_token_is_answered_from_the_cache(keys: StaticKeys) -> None:
    clock = FrozenClock(NOW)
    verifier = JwtVerifier(keys, issuer=ISSUER, clock=clock, leeway=30)
    token = sign(claims={**CLAIMS, "exp": NOW + 10})
    first = await verifier.verify(token)
    keys.keys.clear()  # no signature check could pass now
    keys.reloads = 1  # and no reload either
    clock.advance(39)  # expired, but within the leeway
    assert await verifier.verify(token) is first
    clock.advance(1)
    assert await reason(verifier, token) == "the access token has expired"


def clocked(keys: StaticKeys, clock: FrozenClock) -> JwtVerifier:
    verifier = JwtVerifier(keys, issuer=ISSUER, clock=clock, leeway=0)
    verifier._cache = TTLCache(max_entries=100, monotonic=clock.now)
    return verifier


@pytest.mark.parametrize(("lifetime", "cached_for"), [(100, 100), (3600, 300)])
async def test_the_cache_lasts_until_expiry_or_five_minutes(
    keys: StaticKeys, lifetime: int, cached_for: int
) -> None:
    clock = FrozenClock(NOW)
    verifier = clocked(keys, clock)
    token = sign(claims={**CLAIMS, "exp": NOW + lifetime})
    await verifier.verify(token)
    keys.keys.clear()  # from now on only the cache can accept the token
    keys.reloads = 1
    clock.advance(cached_for - 1)
    await verifier.verify(token)
    clock.advance(1)
    assert await reason(verifier, token) == "the access token was signed with an unknown key"


async def test_revocation_is_checked_on_first_sight_and_from_the_cache(
    verifier: JwtVerifier, revoked: RevokedJtis
) -> None:
    revoked.add("jti-1", NOW + 3600)
    assert await reason(verifier, sign()) == "the access token was revoked"
    other = sign(claims={**CLAIMS, "jti": "jti-2"})
    await verifier.verify(other)
    revoked.add("jti-2", NOW + 3600)
    assert await reason(verifier, other) == "the access token was revoked"


LIFETIME = "the access token's lifetime exceeds the server's maximum"


async def test_a_lifetime_over_the_cap_and_leeway_is_refused_by_name(keys: StaticKeys) -> None:
    capped = JwtVerifier(keys, issuer=ISSUER, clock=FrozenClock(NOW), leeway=30, max_lifetime=600)
    at_cap = sign(claims={**CLAIMS, "exp": NOW + 630})
    assert (await capped.verify(at_cap)).expires_at == NOW + 630
    over = sign(claims={**CLAIMS, "jti": "j-over", "exp": NOW + 631})
    assert await reason(capped, over) == LIFETIME


async def test_a_client_cutoff_is_refused_as_revoked_by_name(keys: StaticKeys) -> None:
    clients = RevokedClients(clock=FrozenClock(NOW), max_token_age=3660)
    verifier = JwtVerifier(
        keys, issuer=ISSUER, clock=FrozenClock(NOW), leeway=30, revoked_clients=clients
    )
    token = sign()
    await verifier.verify(token)
    clients.add("app", NOW)
    assert await reason(verifier, token) == "the access token was revoked"
