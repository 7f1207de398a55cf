"""ID tokens (OIDC Core §2, §3.1.3.6) and the id_token_hint verifier.

Issued tokens are checked by an independent implementation (PyJWT, against the JWKS the
server publishes) and ``at_hash`` against a value computed here with hashlib. The verifier must
take this server's ID tokens — expired ones too (RP-Initiated Logout 1.0 §2) — and refuse
access tokens, other issuers, other clients and forgeries; the access-token verifier must
refuse ID tokens.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import jwt as pyjwt
import orjson
import pytest
from joserfc import jws, jwt

from oauth_server.clock import FrozenClock
from oauth_server.errors import InvalidToken
from oauth_server.oauth.keys import KeyRing, LoadedKey, generate_private_jwk
from oauth_server.oauth.tokens.id_token import (
    IdTokenHint,
    IdTokenIssuer,
    IdTokenVerifier,
    InvalidIdTokenHint,
    at_hash,
)
from oauth_server.oauth.tokens.issue import Authorization, JwtAccessTokenIssuer
from oauth_server.oauth.tokens.verify.jwt import JwtVerifier
from oauth_server.storage.models import User
from tests.fakes import make_client

ISSUER = "https://as.example"
NOW = 1_800_000_000
CLIENT = "spa"
USER = User(
    user_id="u-8f3a",
    username="ada",
    password_hash="x",
    name="Ada Lovelace",
    given_name="Ada",
    family_name="Lovelace",
    preferred_username="ada",
    email="ada@example.com",
    email_verified=True,
    updated_at=1_700_000_000,
)
PROFILE_AND_EMAIL = {
    "name",
    "given_name",
    "family_name",
    "preferred_username",
    "updated_at",
    "email",
    "email_verified",
}


def make_key(kid: str, alg: str = "ES256") -> LoadedKey:
    key = generate_private_jwk(alg)  # type: ignore[arg-type]
    public = {**key.as_dict(private=False), "kid": kid, "alg": alg, "use": "sig"}
    return LoadedKey(kid, alg, 1, 0, key, public)  # type: ignore[arg-type]


class RingKeys:
    """The key ring as a verifier's key source (what KeyManager is in the server)."""

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring

    def verification_key(self, kid: str, now: float) -> LoadedKey | None:
        return self.ring.verification_key(kid, now)

    async def reload_for_unknown_kid(self) -> bool:
        return False


def ring_of(*keys: LoadedKey) -> KeyRing:
    ring = KeyRing(token_ttl=3600, leeway=30)
    ring.replace(list(keys))
    return ring


KEY = make_key("k1")
RING = ring_of(KEY)


def issue(ring: KeyRing = RING, **overrides: Any) -> str:
    arguments: dict[str, Any] = {
        "user": USER,
        "client_id": CLIENT,
        "nonce": "n-0S6_WzA2Mj",
        "auth_time": NOW - 20,
        "sid": "sid-1",
        "access_token": "an-access-token",
        "scope": ("openid", "profile", "email"),
        "now": NOW,
    }
    arguments.update(overrides)
    return IdTokenIssuer(ring, issuer=ISSUER, ttl=300).issue(**arguments)


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload, _ = token.split(".")
    return (
        json.loads(base64.urlsafe_b64decode(header + "==")),
        json.loads(base64.urlsafe_b64decode(payload + "==")),
    )


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --- Issuance ---------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["ES256", "RS256", "EdDSA"])
def test_signature_verifies_with_pyjwt_against_the_published_jwks(alg: str) -> None:
    ring = ring_of(make_key("kx", alg))
    token = issue(ring)
    jwks = orjson.loads(ring.jwks(NOW))
    (public,) = jwks["keys"]
    claims = pyjwt.decode(
        token,
        pyjwt.PyJWK(public).key,
        algorithms=[alg],
        audience=CLIENT,
        issuer=ISSUER,
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims["sub"] == USER.user_id
    header = pyjwt.get_unverified_header(token)
    assert header == {"typ": "JWT", "alg": alg, "kid": "kx"}


def test_ed25519_signature_verifies_with_pyjwt_okp() -> None:
    # PyJWT knows the fully specified name Ed25519 (RFC 9864) only as EdDSA: verify the raw
    # signature with its Ed25519 implementation.
    ring = ring_of(make_key("ke", "Ed25519"))
    token = issue(ring)
    (public,) = orjson.loads(ring.jwks(NOW))["keys"]
    signing_input, _, signature = token.rpartition(".")
    okp = pyjwt.algorithms.OKPAlgorithm()
    key = okp.from_jwk(json.dumps(public))
    assert okp.verify(signing_input.encode(), key, base64.urlsafe_b64decode(signature + "=="))
    assert parts(token)[0]["alg"] == "Ed25519"


def test_claims() -> None:
    header, claims = parts(issue())
    assert header["typ"] == "JWT"
    assert claims == {
        "iss": ISSUER,
        "sub": USER.user_id,
        "aud": CLIENT,
        "exp": NOW + 300,
        "iat": NOW,
        "auth_time": NOW - 20,
        "nonce": "n-0S6_WzA2Mj",
        "sid": "sid-1",
        "amr": ["pwd"],
        "at_hash": at_hash("an-access-token", "ES256"),
    }


@pytest.mark.parametrize(
    ("alg", "hash_name"),
    [("ES256", "sha256"), ("RS256", "sha256"), ("Ed25519", "sha512"), ("EdDSA", "sha512")],
)
def test_at_hash_is_the_left_half_of_the_algs_hash(alg: str, hash_name: str) -> None:
    access_token = "jHkWEdUXMU1BwAsC4vtUsZwnNuUzznRGZgBntdb4wQ"
    digest = hashlib.new(hash_name, access_token.encode("ascii")).digest()
    expected = b64(digest[: len(digest) // 2])
    _, claims = parts(issue(ring_of(make_key("kh", alg)), access_token=access_token))
    assert claims["at_hash"] == expected
    assert len(claims["at_hash"]) == (22 if hash_name == "sha256" else 43)


def test_at_hash_known_vector() -> None:
    # SHA-256 of the ASCII octets of "abc" is ba7816bf8f01cfea414140de5dae2223…; its left
    # 16 bytes, base64url-encoded:
    assert at_hash("abc", "ES256") == "ungWv48Bz-pBQUDeXa4iIw"


def test_nonce_and_sid_only_when_given() -> None:
    _, claims = parts(issue(nonce=None, sid=None))
    assert "nonce" not in claims
    assert "sid" not in claims


def test_azp_only_with_several_audiences() -> None:
    _, single = parts(issue())
    assert single["aud"] == CLIENT
    assert "azp" not in single
    _, several = parts(issue(audience=("https://api.example", CLIENT)))
    assert several["aud"] == [CLIENT, "https://api.example"]
    assert several["azp"] == CLIENT


def test_scope_claims_go_to_userinfo_when_an_access_token_is_issued() -> None:
    _, with_access_token = parts(issue())
    assert not PROFILE_AND_EMAIL & set(with_access_token)
    # OIDC Core §5.4: without an access token, the scopes' claims travel in the ID token.
    _, alone = parts(issue(access_token=None))
    assert "at_hash" not in alone
    assert {name: alone[name] for name in PROFILE_AND_EMAIL} == {
        name: getattr(USER, name) for name in PROFILE_AND_EMAIL
    }
    _, email_only = parts(issue(access_token=None, scope=("openid", "email")))
    assert PROFILE_AND_EMAIL & set(email_only) == {"email", "email_verified"}


def test_amr_as_given() -> None:
    _, claims = parts(issue(amr=("pwd", "otp")))
    assert claims["amr"] == ["pwd", "otp"]


# --- Token type separation --------------------------------------------------------------------


async def test_an_id_token_is_not_an_access_token() -> None:
    verifier = JwtVerifier(RingKeys(RING), issuer=ISSUER, clock=FrozenClock(NOW))
    with pytest.raises(InvalidToken, match="typ"):
        await verifier.verify(issue())


# --- id_token_hint ----------------------------------------------------------------------------


def hints(clock: FrozenClock | None = None, issuer: str = ISSUER) -> IdTokenVerifier:
    return IdTokenVerifier(RingKeys(RING), issuer=issuer, clock=clock or FrozenClock(NOW))


async def test_hint_genuine() -> None:
    hint = await hints().verify_hint(issue(), client_id=CLIENT)
    assert hint == IdTokenHint(
        subject=USER.user_id,
        audience=(CLIENT,),
        session_id="sid-1",
        expires_at=NOW + 300,
        expired=False,
    )
    assert (await hints().verify_hint(issue())).subject == USER.user_id


async def test_expired_hint_is_accepted() -> None:
    # RP-Initiated Logout 1.0 §2: the OP need not be concerned with the hint's expiration.
    later = FrozenClock(NOW + 86_400)
    hint = await hints(later).verify_hint(issue(), client_id=CLIENT)
    assert (hint.subject, hint.expired) == (USER.user_id, True)


async def test_access_token_is_not_an_id_token() -> None:
    token = await JwtAccessTokenIssuer(RING, issuer=ISSUER, clock=FrozenClock(NOW), ttl=3600).issue(
        Authorization(make_client(client_id=CLIENT), USER.user_id, ("openid",), (CLIENT,))
    )
    with pytest.raises(InvalidIdTokenHint, match="typ"):
        await hints().verify_hint(token.access_token, client_id=CLIENT)


async def test_other_issuer_refused() -> None:
    with pytest.raises(InvalidIdTokenHint, match="someone else"):
        await hints(issuer="https://other.example").verify_hint(issue())


async def test_other_client_refused() -> None:
    with pytest.raises(InvalidIdTokenHint, match="another client"):
        await hints().verify_hint(issue(), client_id="someone-else")


def _resigned(header: dict[str, Any], claims: dict[str, Any] | None = None) -> str:
    # jws, not jwt: joserfc's jwt.encode would add a typ of its own.
    payload = orjson.dumps(claims or parts(issue())[1])
    return jws.serialize_compact(header, payload, KEY.key, algorithms=[KEY.alg])


def _forgeries() -> dict[str, str]:
    genuine = issue()
    header, claims = parts(genuine)
    head, _, signature = genuine.split(".")
    tampered = {**claims, "sub": "someone-else"}
    attacker = make_key("k1")
    return {
        "payload swapped": f"{head}.{b64(orjson.dumps(tampered))}.{signature}",
        "alg none": f"{b64(orjson.dumps({**header, 'alg': 'none'}))}.{genuine.split('.')[1]}.",
        "signed by another key under our kid": jwt.encode(
            header, claims, attacker.key, algorithms=["ES256"]
        ),
        "unknown kid": jwt.encode(
            {**header, "kid": "k9"}, claims, attacker.key, algorithms=["ES256"]
        ),
        "embedded jwk": _resigned({**header, "jwk": attacker.public_jwk}),
        "no typ": _resigned({"alg": "ES256", "kid": "k1"}),
        "alg differs from the key's": f"{b64(orjson.dumps({**header, 'alg': 'RS256'}))}."
        f"{genuine.split('.')[1]}.{signature}",
        "no sub": _resigned(header, {k: v for k, v in claims.items() if k != "sub"}),
        "no aud": _resigned(header, {k: v for k, v in claims.items() if k != "aud"}),
        "not a JWS": "a.b",
        "too long": genuine + "A" * 5000,
    }


@pytest.mark.parametrize("name", sorted(_forgeries()))
async def test_forged_hints_refused(name: str) -> None:
    with pytest.raises(InvalidIdTokenHint):
        await hints().verify_hint(_forgeries()[name], client_id=CLIENT)
