"""JWT access-token verification: the real thing passes, every forgery is InvalidToken.

The forgeries are the bug classes other JWT libraries shipped (RFC 8725): ``alg: none``,
HS256 signed with the public key, attacker keys in ``jwk``/``jku``/``x5u``/``x5c``, unknown
``kid``, ``crit``, wrong ``typ``, oversized tokens, and claim tampering.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from oauth_server.clock import FrozenClock
from oauth_server.errors import InvalidToken
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
    make_key,
    sign,
)


@pytest.fixture
def keys() -> StaticKeys:
    return StaticKeys(KEY)


@pytest.fixture
def revoked() -> RevokedJtis:
    return RevokedJtis(clock=FrozenClock(NOW), max_token_ttl=3600)


@pytest.fixture
def verifier(keys: StaticKeys, revoked: RevokedJtis) -> JwtVerifier:
    return JwtVerifier(keys, issuer=ISSUER, clock=FrozenClock(NOW), leeway=30, revoked=revoked)


async def test_genuine_token(verifier: JwtVerifier) -> None:
    claims = await verifier.verify(sign())
    assert claims.client_id == "app"
    assert claims.scope == {"a", "b"}
    assert claims.audience == ("https://rs.example",)
    assert (claims.jti, claims.issued_at, claims.expires_at) == ("jti-1", NOW, NOW + 3600)


@pytest.mark.parametrize("forge", FORGERIES.values(), ids=FORGERIES.keys())
async def test_forgeries_are_invalid_tokens(
    verifier: JwtVerifier, forge: Callable[[], str]
) -> None:
    with pytest.raises(InvalidToken):
        await verifier.verify(forge())


async def test_leeway_accepts_small_skew(verifier: JwtVerifier) -> None:
    """30 s of clock skew either way is accepted, and not a second more."""
    skewed = await verifier.verify(sign(claims={**CLAIMS, "exp": NOW - 29, "nbf": NOW + 29}))
    assert (skewed.jti, skewed.client_id, skewed.expires_at) == ("jti-1", "app", NOW - 29)
    for beyond in ({"exp": NOW - 30}, {"nbf": NOW + 31}):
        with pytest.raises(InvalidToken):
            await verifier.verify(sign(claims={**CLAIMS, **beyond}))


async def test_unknown_kid_asks_the_key_source_to_reload(
    verifier: JwtVerifier, keys: StaticKeys
) -> None:
    """The verifier's side: an unknown kid asks for one reload and retries once; a refused
    reload means "unknown key". The rate limit itself is the key source's, tested on the real
    ones in tests/unit/test_reload_limits.py."""
    late = make_key("late")
    token = sign(header={**HEADER, "kid": "late"}, key=late)
    keys.pending["late"] = late  # "another instance rotated": visible only after a reload
    assert (await verifier.verify(token)).jti == "jti-1"
    assert keys.reloads == 1
    with pytest.raises(InvalidToken):  # this fake refuses a second reload
        await verifier.verify(sign(header={**HEADER, "kid": "x"}, key=make_key("x")))


async def test_revocation_applies_to_cached_tokens(
    verifier: JwtVerifier, revoked: RevokedJtis
) -> None:
    token = sign()
    await verifier.verify(token)
    revoked.add("jti-1", NOW + 3600)
    with pytest.raises(InvalidToken, match="revoked"):
        await verifier.verify(token)


async def test_cached_tokens_still_expire(keys: StaticKeys) -> None:
    clock = FrozenClock(NOW)
    verifier = JwtVerifier(keys, issuer=ISSUER, clock=clock, leeway=0)
    token = sign()
    await verifier.verify(token)
    clock.advance(3600)
    with pytest.raises(InvalidToken, match="expired"):
        await verifier.verify(token)


def capped_verifier(keys: StaticKeys, clients: RevokedClients | None = None) -> JwtVerifier:
    return JwtVerifier(
        keys,
        issuer=ISSUER,
        clock=FrozenClock(NOW),
        leeway=30,
        revoked_clients=clients,
        max_lifetime=3600,
    )


@pytest.mark.parametrize(
    ("claims", "accepted"),
    [
        ({"exp": NOW + 3600}, True),
        ({"exp": NOW + 3630}, True),  # within the leeway
        ({"exp": NOW + 3631}, False),
        ({"exp": NOW + 10 * 365 * 86_400}, False),  # issue 8 finding 8: a ten-year token
        ({"iat": NOW - 3000, "exp": NOW + 601}, True),
        ({"iat": NOW - 3000, "exp": NOW + 631}, False),
        # iat pushed into the future to stretch exp under the cap
        ({"iat": NOW + 86_400, "exp": NOW + 86_400 + 3600}, False),
        ({"iat": NOW + 30, "exp": NOW + 3630}, True),
    ],
)
async def test_lifetime_beyond_the_servers_maximum_is_refused(
    keys: StaticKeys, claims: dict[str, int], accepted: bool
) -> None:
    token = sign(claims={**CLAIMS, **claims})
    if accepted:
        await capped_verifier(keys).verify(token)
    else:
        with pytest.raises(InvalidToken):
            await capped_verifier(keys).verify(token)


async def test_client_cutoff_voids_earlier_tokens_cached_or_not(keys: StaticKeys) -> None:
    clients = RevokedClients(clock=FrozenClock(NOW), max_token_age=3660)
    verifier = capped_verifier(keys, clients)
    cached = sign()
    await verifier.verify(cached)
    clients.add("app", NOW)  # at the token's own second: voided too
    for token in (cached, sign(claims={**CLAIMS, "jti": "j2", "iat": NOW - 5})):
        with pytest.raises(InvalidToken, match="revoked"):
            await verifier.verify(token)
    later = sign(claims={**CLAIMS, "jti": "j3", "iat": NOW + 1, "exp": NOW + 3601})
    assert (await verifier.verify(later)).jti == "j3"
    other = sign(claims={**CLAIMS, "jti": "j4", "client_id": "other"})
    assert (await verifier.verify(other)).client_id == "other"
