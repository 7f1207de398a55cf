"""The id_token_hint verifier decided case by case — each refusal with its exact message, the
claim types at their edges, a key that appears on reload, every signing algorithm — and the
issuer's per-scope claims and per-key header cache (kills the mutants of
``oauth/tokens/id_token.py``; see ``make mutate``)."""

from __future__ import annotations

import base64
from dataclasses import replace
from typing import Any

import orjson
import pytest
from joserfc import jws

from oauth_server.clock import FrozenClock
from oauth_server.oauth.keys import KeyRing, LoadedKey, generate_private_jwk
from oauth_server.oauth.tokens.id_token import (
    GrantIdTokens,
    IdTokenIssuer,
    IdTokenVerifier,
    InvalidIdTokenHint,
    at_hash,
    scope_claims,
)
from oauth_server.oauth.tokens.issue import AccessToken, Authorization, UserContext
from oauth_server.oauth.tokens.verify.claims import MAX_TOKEN_LENGTH
from oauth_server.storage.models import User
from tests.signin import GRANT_NOW, PUBLIC_ID, REDIRECT, USER_ID, grant_world, public_client

ISSUER = "https://as.example"
NOW = 1_800_000_000
CLIENT = "spa"
USER = User(user_id="u-1", username="ada", password_hash="x")


def make_key(kid: str, alg: str = "ES256") -> LoadedKey:
    key = generate_private_jwk(alg)  # type: ignore[arg-type]
    public = {**key.as_dict(private=False), "kid": kid, "alg": alg, "use": "sig"}
    return LoadedKey(kid, alg, 1, 0, key, public)  # type: ignore[arg-type]


def ring_of(*keys: LoadedKey) -> KeyRing:
    ring = KeyRing(token_ttl=3600, leeway=30)
    ring.replace(list(keys))
    return ring


KEY = make_key("k1")
MALFORMED = "the id_token_hint is malformed or its signature is invalid"


class Keys:
    """A key source; ``on_reload`` is the ring a reload brings (None: a reload finds nothing)."""

    def __init__(self, ring: KeyRing, on_reload: KeyRing | None = None) -> None:
        self.ring = ring
        self.on_reload = on_reload
        self.reloads = 0

    def verification_key(self, kid: str, now: float) -> LoadedKey | None:
        return self.ring.verification_key(kid, now)

    async def reload_for_unknown_kid(self) -> bool:
        self.reloads += 1
        if self.on_reload is None:
            return False
        self.ring = self.on_reload
        return True


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "u-1",
        "aud": CLIENT,
        "exp": NOW + 300,
        "iat": NOW,
        "sid": "sid-1",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def signed(payload: Any, header: dict[str, Any] | None = None, key: LoadedKey = KEY) -> str:
    head = {"typ": "JWT", "alg": key.alg, "kid": key.kid} if header is None else header
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return jws.serialize_compact(head, body, key.key, algorithms=[key.alg])


def verifier(keys: Keys | None = None, now: float = NOW) -> IdTokenVerifier:
    return IdTokenVerifier(keys or Keys(ring_of(KEY)), issuer=ISSUER, clock=FrozenClock(now))


async def refusal(token: str, client_id: str | None = None, keys: Keys | None = None) -> str | None:
    with pytest.raises(InvalidIdTokenHint) as caught:
        await verifier(keys).verify_hint(token, client_id)
    return caught.value.description


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --- shape and signature ------------------------------------------------------------------


async def test_size_and_dots_are_checked_first() -> None:
    assert await refusal("a.b") == "the id_token_hint is not an ID token"
    assert await refusal("a.b.c.d") == "the id_token_hint is not an ID token"
    assert await refusal("a.b." + "A" * (MAX_TOKEN_LENGTH - 3)) == (
        "the id_token_hint is not an ID token"
    )
    # Exactly MAX_TOKEN_LENGTH characters is not too long: it reaches the signature check.
    assert await refusal("a.b." + "A" * (MAX_TOKEN_LENGTH - 4)) == (
        "the id_token_hint is malformed or its signature is invalid"
    )


NOT_ACCEPTED = "the id_token_hint's algorithm or key id is not accepted"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ({"alg": "ES256", "kid": "k1"}, "the id_token_hint is not an ID token (typ)"),
        (
            {"typ": "at+jwt", "alg": "ES256", "kid": "k1"},
            "the id_token_hint is not an ID token (typ)",
        ),
        (
            {"typ": "JWT", "alg": "ES256", "kid": "k1", "jku": "https://evil.example"},
            "the id_token_hint header must not contain jku",
        ),
        (
            {"typ": "JWT", "alg": "ES256", "kid": "k1", "x5u": "https://evil.example"},
            "the id_token_hint header must not contain x5u",
        ),
        ({"typ": "JWT", "alg": "ES256"}, NOT_ACCEPTED),
        (
            {"typ": "JWT", "alg": "RS256", "kid": "k1"},
            "the id_token_hint's algorithm does not match its key",
        ),
        # joserfc refuses these before a key is chosen (a non-string typ or kid, crit, an
        # algorithm outside SIGNING_ALGS): the same refusal as a bad signature.
        ({"typ": 1, "alg": "ES256", "kid": "k1"}, MALFORMED),
        ({"typ": "JWT", "alg": "ES256", "kid": 1}, MALFORMED),
        ({"typ": "JWT", "alg": "ES256", "kid": "k1", "crit": ["exp"]}, MALFORMED),
        ({"typ": "JWT", "alg": "HS256", "kid": "k1"}, MALFORMED),
    ],
)
async def test_header_refusals(header: dict[str, Any], message: str) -> None:
    head = b64(orjson.dumps(header))
    genuine = signed(claims())
    _, payload, signature = genuine.split(".")
    assert await refusal(f"{head}.{payload}.{signature}") == message


async def test_typ_is_compared_case_insensitively() -> None:
    header = {"typ": "jwt", "alg": "ES256", "kid": "k1"}
    assert (await verifier().verify_hint(signed(claims(), header))).subject == "u-1"


async def test_a_bad_signature_is_malformed() -> None:
    head, payload, _ = signed(claims()).split(".")
    other = signed(claims(sub="u-2")).split(".")[2]
    assert await refusal(f"{head}.{payload}.{other}") == (
        "the id_token_hint is malformed or its signature is invalid"
    )


@pytest.mark.parametrize("alg", ["ES256", "RS256", "Ed25519", "EdDSA"])
async def test_every_signing_algorithm_is_accepted(alg: str) -> None:
    key = make_key("kx", alg)
    hint = await verifier(Keys(ring_of(key))).verify_hint(signed(claims(), key=key), CLIENT)
    assert hint.subject == "u-1"


async def test_a_key_that_appears_on_reload_verifies() -> None:
    new = make_key("k2")
    keys = Keys(ring_of(KEY), on_reload=ring_of(KEY, new))
    hint = await verifier(keys).verify_hint(signed(claims(), key=new), CLIENT)
    assert (hint.subject, keys.reloads) == ("u-1", 1)


async def test_an_unknown_key_is_refused_after_one_reload() -> None:
    stranger = make_key("k9")
    keys = Keys(ring_of(KEY))
    assert await refusal(signed(claims(), key=stranger), keys=keys) == (
        "the id_token_hint was not signed by a key of this server"
    )
    assert keys.reloads == 1
    # A reload that brings other keys but not this one: still refused.
    keys = Keys(ring_of(KEY), on_reload=ring_of(KEY, make_key("k2")))
    assert await refusal(signed(claims(), key=stranger), keys=keys) == (
        "the id_token_hint was not signed by a key of this server"
    )


# --- claims -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"not json", "the id_token_hint's claims are not JSON"),
        ([claims()], "the id_token_hint's claims are not an object"),
        (claims(iss="https://other.example"), "the id_token_hint was issued by someone else"),
        (claims(sub=None), "the id_token_hint lacks sub, exp or iat"),
        (claims(sub=""), "the id_token_hint lacks sub, exp or iat"),
        (claims(sub=123), "the id_token_hint lacks sub, exp or iat"),
        (claims(exp=str(NOW + 300)), "the id_token_hint lacks sub, exp or iat"),
        (claims(exp=True), "the id_token_hint lacks sub, exp or iat"),
        (claims(iat=None), "the id_token_hint lacks sub, exp or iat"),
        (claims(aud=None), "the id_token_hint has no audience"),
        (claims(aud=[]), "the id_token_hint has no audience"),
        (claims(aud=[""]), "the id_token_hint has no audience"),
        (claims(aud=[CLIENT, 7]), "the id_token_hint has no audience"),
        (claims(aud={"spa": 1}), "the id_token_hint has no audience"),
    ],
)
async def test_claim_refusals(payload: Any, message: str) -> None:
    assert await refusal(signed(payload)) == message


async def test_another_clients_hint() -> None:
    assert await refusal(signed(claims()), client_id="other") == (
        "the id_token_hint was issued to another client"
    )


async def test_an_audience_list_and_an_odd_sid() -> None:
    hint = await verifier().verify_hint(signed(claims(aud=["rp", CLIENT], sid=12)), CLIENT)
    assert (hint.audience, hint.session_id) == (("rp", CLIENT), None)
    hint = await verifier().verify_hint(signed(claims(sid=None)), CLIENT)
    assert hint.session_id is None


async def test_expired_from_the_second_of_exp() -> None:
    token = signed(claims())
    assert not (await verifier(now=NOW + 299).verify_hint(token)).expired
    assert (await verifier(now=NOW + 300).verify_hint(token)).expired


# --- issuance -----------------------------------------------------------------------------


def test_unset_profile_claims_are_left_out_but_booleans_and_times_kept() -> None:
    assert scope_claims(USER, ("openid", "profile", "email")) == {
        "updated_at": 0,
        "email_verified": False,
    }


def test_the_header_is_encoded_once_per_key() -> None:
    issuer = IdTokenIssuer(ring_of(KEY), issuer=ISSUER, ttl=300)
    arguments: dict[str, Any] = {
        "user": USER,
        "client_id": CLIENT,
        "nonce": None,
        "auth_time": NOW,
        "sid": None,
        "access_token": "at",
        "now": NOW,
    }
    first = issuer.issue(**arguments)
    cached = issuer._headers["k1"]
    second = issuer.issue(**arguments)
    assert issuer._headers["k1"] is cached
    assert first.split(".")[0] == second.split(".")[0] == cached.decode()


# --- the token endpoint's hook: what a user grant signs into its ID token ------------------


def grant_hook(clock: FrozenClock) -> GrantIdTokens:
    return GrantIdTokens(IdTokenIssuer(ring_of(KEY), issuer=ISSUER, ttl=300), clock=clock)


def claims_of(id_token: str | None) -> dict[str, Any]:
    assert id_token is not None
    payload = jws.deserialize_compact(id_token, KEY.key, algorithms=["ES256"]).payload
    decoded: dict[str, Any] = orjson.loads(payload)
    return decoded


async def test_a_code_grants_id_token_carries_the_sign_in() -> None:
    world = grant_world(id_tokens=grant_hook)
    value, _, verifier_ = world.put_code(
        scope="openid profile email offline_access",
        nonce="n-1",
        session_id="sid-1",
        auth_time=GRANT_NOW - 100,
    )
    world.clock.advance(1)
    tokens = await world.redeem(
        {"code": value, "redirect_uri": REDIRECT, "code_verifier": verifier_}
    )
    # The profile and email claims go to userinfo: an access token is issued (OIDC Core §5.4).
    assert claims_of(tokens.id_token) == {
        "iss": ISSUER,
        "sub": USER_ID,
        "aud": PUBLIC_ID,
        "exp": GRANT_NOW + 1 + 300,
        "iat": GRANT_NOW + 1,
        "auth_time": GRANT_NOW - 100,
        "nonce": "n-1",
        "sid": "sid-1",
        "amr": ["pwd"],
        "at_hash": at_hash(tokens.access.access_token, "ES256"),
    }

    # §12.2: refreshed, it keeps auth_time and sid, and has no nonce.
    assert tokens.refresh_token is not None
    refreshed = await world.refresh_with(tokens.refresh_token)
    assert claims_of(refreshed.id_token) == {
        "iss": ISSUER,
        "sub": USER_ID,
        "aud": PUBLIC_ID,
        "exp": GRANT_NOW + 1 + 300,
        "iat": GRANT_NOW + 1,
        "auth_time": GRANT_NOW - 100,
        "sid": "sid-1",
        "amr": ["pwd"],
        "at_hash": at_hash(refreshed.access.access_token, "ES256"),
    }


async def test_no_nonce_or_session_no_claim() -> None:
    world = grant_world(id_tokens=grant_hook)
    value, _, verifier_ = world.put_code(scope="openid", auth_time=GRANT_NOW)
    tokens = await world.redeem(
        {"code": value, "redirect_uri": REDIRECT, "code_verifier": verifier_}
    )
    claims = claims_of(tokens.id_token)
    assert "nonce" not in claims
    assert "sid" not in claims
    assert claims["auth_time"] == GRANT_NOW


async def test_no_id_token_without_the_sign_in_or_its_user() -> None:
    hook = grant_hook(FrozenClock(GRANT_NOW))
    access = AccessToken("at", 600, ("openid",))
    machine = Authorization(client=public_client(), subject="spa", scope=("openid",))
    assert await hook.issue(machine, access) is None
    unknown = replace(machine, user=UserContext(user_id=USER_ID))  # no auth time was stored
    assert await hook.issue(unknown, access) is None
    world = grant_world(id_tokens=grant_hook)
    value, _ = world.put_refresh(scope="openid")  # a refresh token from before auth times
    assert (await world.refresh_with(value)).id_token is None
