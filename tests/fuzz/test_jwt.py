"""Property tests for JWT access-token verification (RFC 9068, RFC 8725).

A real key ring signs real tokens (``JwtAccessTokenIssuer``); the verifier must accept those,
and answer everything else — arbitrary strings, tokens with flipped bits, shuffled segments,
headers rewritten to ``alg: none``/HS256/embedded or remote keys/``crit``/no ``typ``, forged
signatures — with :class:`InvalidToken` and nothing else. Tokens signed with the real key but
carrying a forbidden header are refused too, and tokens with arbitrary claims signed with the
real key either verify with well-formed claims or are :class:`InvalidToken`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st
from joserfc.jwk import ECKey, OKPKey, RSAKey
from joserfc.jws import JWSRegistry

from oauth_server.algorithms import SigningAlg
from oauth_server.clock import FrozenClock
from oauth_server.errors import InvalidToken
from oauth_server.oauth.keys import KeyRing, LoadedKey, generate_private_jwk
from oauth_server.oauth.tokens.issue import Authorization, JwtAccessTokenIssuer
from oauth_server.oauth.tokens.verify.claims import AccessClaims
from oauth_server.oauth.tokens.verify.jwt import JwtVerifier
from oauth_server.storage.models import Client

ISSUER = "https://as.example"
AUDIENCE = "https://rs.example"
NOW = 1_800_000_000
LEEWAY = 30
ALGS: tuple[SigningAlg, ...] = ("ES256", "RS256", "Ed25519", "EdDSA")


class RingKeys:
    """A minimal in-memory key source over a real :class:`KeyRing`: no storage, no reloads."""

    def __init__(self, ring: KeyRing) -> None:
        self._ring = ring

    def verification_key(self, kid: str, now: float) -> LoadedKey | None:
        return self._ring.verification_key(kid, now)

    async def reload_for_unknown_kid(self) -> bool:
        return False


@dataclass(frozen=True)
class Signer:
    """One signing key in a ring, and a token the issuer made with it."""

    alg: SigningAlg
    key: LoadedKey
    ring: KeyRing
    token: str

    @property
    def header(self) -> dict[str, Any]:
        header: dict[str, Any] = json.loads(b64decode(self.token.split(".")[0]))
        return header

    @property
    def claims(self) -> dict[str, Any]:
        claims: dict[str, Any] = json.loads(b64decode(self.token.split(".")[1]))
        return claims

    def verify(self, token: str) -> AccessClaims:
        verifier = JwtVerifier(
            RingKeys(self.ring), issuer=ISSUER, clock=FrozenClock(NOW), leeway=LEEWAY
        )
        return asyncio.run(verifier.verify(token))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def compact(header: bytes, payload: bytes, signature: bytes) -> str:
    return f"{b64(header)}.{b64(payload)}.{b64(signature)}"


def signing_input(header: bytes, payload: bytes) -> bytes:
    return f"{b64(header)}.{b64(payload)}".encode("ascii")


def _make_signer(alg: SigningAlg) -> Signer:
    private = generate_private_jwk(alg)
    kid = private.thumbprint()
    public = {**private.as_dict(private=False), "kid": kid, "use": "sig", "alg": alg}
    key = LoadedKey(
        kid=kid, alg=alg, generation=1, activates_at=NOW - 60, key=private, public_jwk=public
    )
    ring = KeyRing(token_ttl=3600, leeway=LEEWAY)
    ring.replace([key])
    issuer = JwtAccessTokenIssuer(ring, issuer=ISSUER, clock=FrozenClock(NOW), ttl=3600)
    client = Client(client_id="svc", secret_hash=None, scopes=frozenset({"restaurants:read"}))
    grant = Authorization(
        client=client, subject="svc", scope=("restaurants:read",), audience=(AUDIENCE,)
    )
    token = asyncio.run(issuer.issue(grant)).access_token
    return Signer(alg=alg, key=key, ring=ring, token=token)


SIGNERS = {alg: _make_signer(alg) for alg in ALGS}
# The attacker's own keys, one of each type.
ATTACKER_EC = generate_private_jwk("ES256")
ATTACKER_RSA = generate_private_jwk("RS256")
ATTACKER_OKP = generate_private_jwk("Ed25519")

by_alg = pytest.mark.parametrize("alg", ALGS)


def assert_invalid(signer: Signer, token: str) -> None:
    with pytest.raises(InvalidToken) as raised:
        signer.verify(token)
    assert raised.value.status_code == 401
    assert raised.value.headers()["WWW-Authenticate"].startswith("Bearer ")


@by_alg
def test_issued_tokens_verify(alg: SigningAlg) -> None:
    """The control: without it, a verifier that refuses everything would pass every test."""
    signer = SIGNERS[alg]
    claims = signer.verify(signer.token)
    assert claims.client_id == "svc"
    assert claims.audience == (AUDIENCE,)
    assert claims.scope == frozenset({"restaurants:read"})
    assert signer.header == {"typ": "at+jwt", "alg": alg, "kid": signer.key.kid}


# --- arbitrary strings ---------------------------------------------------------------------

b64url_text = st.text(
    st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
    max_size=120,
)
json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)
token_like = (
    st.text(st.characters(exclude_categories=()), max_size=200)
    | st.lists(b64url_text, min_size=0, max_size=5).map(".".join)
    | st.tuples(json_values, json_values, st.binary(max_size=80)).map(
        lambda parts: compact(
            json.dumps(parts[0]).encode(), json.dumps(parts[1]).encode(), parts[2]
        )
    )
)


@by_alg
@given(token=token_like)
@example(token="")
@example(token="..")
@example(token="a.b.c")
@example(token="e30.e30.")  # {} . {} . no signature
@example(token="x" * 5000)
@example(token="\ud800.\udfff.x")
def test_arbitrary_strings_are_invalid_token(alg: SigningAlg, token: str) -> None:
    signer = SIGNERS[alg]
    assume(token != signer.token)
    assert_invalid(signer, token)


# --- mutations of real tokens --------------------------------------------------------------


@by_alg
@given(data=st.data())
def test_changed_characters_are_invalid_token(alg: SigningAlg, data: st.DataObject) -> None:
    signer = SIGNERS[alg]
    chars = list(signer.token)
    for _ in range(data.draw(st.integers(1, 3), label="changes")):
        index = data.draw(st.integers(0, len(chars) - 1), label="index")

        def flip(bit: int, original: str = chars[index]) -> str:
            return chr(ord(original) ^ (1 << bit))

        replacement = data.draw(
            st.integers(0, 6).map(flip) | st.characters(codec="utf-8"),
            label="replacement",
        )
        chars[index] = replacement
    mutated = "".join(chars)
    assume(mutated != signer.token)
    assert_invalid(signer, mutated)


@by_alg
@given(segment=st.sampled_from([0, 1, 2]), data=st.data())
def test_flipped_bits_in_decoded_segments_are_invalid_token(
    alg: SigningAlg, segment: int, data: st.DataObject
) -> None:
    signer = SIGNERS[alg]
    parts = signer.token.split(".")
    raw = bytearray(b64decode(parts[segment]))
    for _ in range(data.draw(st.integers(1, 3), label="flips")):
        bit = data.draw(st.integers(0, len(raw) * 8 - 1), label="bit")
        raw[bit // 8] ^= 1 << (bit % 8)
    parts[segment] = b64(bytes(raw))
    mutated = ".".join(parts)
    assume(mutated != signer.token)
    assert_invalid(signer, mutated)


@by_alg
@given(data=st.data())
def test_rearranged_segments_are_invalid_token(alg: SigningAlg, data: st.DataObject) -> None:
    signer = SIGNERS[alg]
    header, payload, signature = signer.token.split(".")
    pieces = [header, payload, signature, "", "e30", "bm9uZQ", signer.token]
    arrangement = data.draw(st.lists(st.sampled_from(pieces), max_size=5))
    mutated = ".".join(arrangement)
    assume(mutated != signer.token)
    assert_invalid(signer, mutated)


@by_alg
@given(cut=st.integers(0, 2000), extra=st.text(max_size=3))
def test_truncated_or_extended_tokens_are_invalid_token(
    alg: SigningAlg, cut: int, extra: str
) -> None:
    signer = SIGNERS[alg]
    mutated = signer.token[: min(cut, len(signer.token) - 1)] + extra
    assume(mutated != signer.token)
    assert_invalid(signer, mutated)


# --- forged headers and signatures ---------------------------------------------------------

MISSING = object()  # marks a header member to delete
URLS = st.sampled_from(["https://attacker.example/jwks.json", "http://127.0.0.1/k", ""])
header_changes = st.fixed_dictionaries(
    {},
    optional={
        "alg": st.sampled_from(
            [
                "none",
                "None",
                "NONE",
                "HS256",
                "HS384",
                "HS512",
                "RS256",
                "PS256",
                "ES256",
                "ES384",
                "ES512",
                "ES256K",
                "EdDSA",
                "Ed25519",
                "Ed448",
                "",
                1,
                None,
                ["ES256"],
                MISSING,
            ]
        ),
        "typ": st.sampled_from(
            ["at+jwt", "application/at+jwt", "JWT", "jwt", "AT+JWT", "", 1, None, MISSING]
        ),
        "kid": st.sampled_from(["unknown", "", 1, None, ["k"], {"k": 1}, MISSING])
        | st.text(max_size=10),
        "jwk": st.sampled_from(
            [
                ATTACKER_EC.as_dict(private=False),
                ATTACKER_RSA.as_dict(private=False),
                ATTACKER_OKP.as_dict(private=False),
                {"kty": "oct", "k": "c2VjcmV0"},
            ]
        ),
        "jku": URLS,
        "x5u": URLS,
        "x5c": st.sampled_from([["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"], [], "x"]),
        "crit": st.sampled_from([["exp"], ["b64"], [], "exp", [1]]),
        "b64": st.booleans(),
        "zip": st.just("DEF"),
        "cty": st.sampled_from(["JWT", "json"]),
    },
)
FORGERIES = [
    "none",  # empty signature
    "hmac-with-public-pem",  # the classic algorithm confusion (RFC 8725 §2.1)
    "hmac-with-public-jwk",
    "hmac-with-kid",
    "attacker-key",
    "original-signature",
    "random-bytes",
]


def _hmac(alg: object, secret: bytes, message: bytes) -> bytes:
    digest = {"HS384": hashlib.sha384, "HS512": hashlib.sha512}.get(str(alg), hashlib.sha256)
    return hmac.new(secret, message, digest).digest()


def _attacker_signature(alg: object, message: bytes) -> bytes:
    key: ECKey | RSAKey | OKPKey
    name = alg if isinstance(alg, str) else "ES256"
    if name in ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"):
        key = ATTACKER_RSA
    elif name in ("EdDSA", "Ed25519"):
        key = ATTACKER_OKP
    else:
        key, name = ATTACKER_EC, "ES256"
    return JWSRegistry.algorithms[name].sign(message, key)


def forge(signer: Signer, method: str, header: dict[str, Any], payload: bytes, noise: bytes) -> str:
    header_bytes = json.dumps(header).encode()
    message = signing_input(header_bytes, payload)
    alg = header.get("alg")
    public = signer.key.key
    if method == "none":
        signature = b""
    elif method == "hmac-with-public-pem":
        signature = _hmac(alg, public.as_pem(private=False), message)
    elif method == "hmac-with-public-jwk":
        signature = _hmac(alg, json.dumps(signer.key.public_jwk).encode(), message)
    elif method == "hmac-with-kid":
        signature = _hmac(alg, str(header.get("kid", "")).encode(), message)
    elif method == "attacker-key":
        signature = _attacker_signature(alg, message)
    elif method == "original-signature":
        signature = b64decode(signer.token.split(".")[2])
    else:
        signature = noise
    return f"{message.decode('ascii')}.{b64(signature)}"


@by_alg
@given(
    changes=header_changes,
    method=st.sampled_from(FORGERIES),
    tamper_claims=st.dictionaries(
        st.sampled_from(["sub", "client_id", "scope", "aud", "exp"]), json_values, max_size=2
    ),
    noise=st.binary(max_size=300),
)
@example(changes={"alg": "none"}, method="none", tamper_claims={}, noise=b"")
@example(changes={"alg": "HS256"}, method="hmac-with-public-pem", tamper_claims={}, noise=b"")
@example(changes={"alg": "HS256"}, method="hmac-with-public-jwk", tamper_claims={}, noise=b"")
@example(
    changes={"jwk": ATTACKER_EC.as_dict(private=False), "alg": "ES256"},
    method="attacker-key",
    tamper_claims={"scope": "restaurants:write"},
    noise=b"",
)
@example(changes={"typ": MISSING}, method="original-signature", tamper_claims={}, noise=b"")
def test_forged_tokens_are_invalid_token(
    alg: SigningAlg,
    changes: dict[str, Any],
    method: str,
    tamper_claims: dict[str, Any],
    noise: bytes,
) -> None:
    signer = SIGNERS[alg]
    header = signer.header
    for name, value in changes.items():
        if value is MISSING:
            header.pop(name, None)
        else:
            header[name] = value
    payload = json.dumps({**signer.claims, **tamper_claims}).encode()
    forged = forge(signer, method, header, payload, noise)
    assume(forged != signer.token)
    assert_invalid(signer, forged)


# --- signed with the real key, but the header breaks the policy ----------------------------

policy_violations = st.sampled_from(
    [
        ("typ", MISSING),
        ("typ", "JWT"),
        ("typ", "jwt"),
        ("typ", "at+jwt; v=1"),
        ("typ", 1),
        ("typ", None),
        ("kid", MISSING),
        ("kid", "unknown"),
        ("kid", 1),
        ("jku", "https://attacker.example/jwks.json"),
        ("x5u", "https://attacker.example/cert.pem"),
        ("x5c", ["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"]),
        ("crit", ["exp"]),
        ("crit", []),
        ("jwk", "the signer's own public key"),
        ("jwk", "the attacker's public key"),
    ]
)


@by_alg
@given(
    violations=st.lists(policy_violations, min_size=1, max_size=3, unique_by=lambda v: v[0]),
    extra=st.dictionaries(st.sampled_from(["cty", "foo", "exp"]), json_scalars, max_size=2),
)
def test_real_signature_with_forbidden_header_is_invalid_token(
    alg: SigningAlg, violations: list[tuple[str, Any]], extra: dict[str, Any]
) -> None:
    signer = SIGNERS[alg]
    header = {**signer.header, **extra}
    for name, value in violations:
        if value is MISSING:
            header.pop(name, None)
        elif value == "the signer's own public key":
            header[name] = signer.key.public_jwk
        elif value == "the attacker's public key":
            header[name] = ATTACKER_EC.as_dict(private=False)
        else:
            header[name] = value
    header_bytes = json.dumps(header).encode()
    payload = json.dumps(signer.claims).encode()
    message = signing_input(header_bytes, payload)
    signature = JWSRegistry.algorithms[alg].sign(message, signer.key.key)
    assert_invalid(signer, f"{message.decode('ascii')}.{b64(signature)}")


# --- arbitrary claims, signed with the real key --------------------------------------------

claim_values = {
    "iss": st.sampled_from([ISSUER, ISSUER + "/", "https://attacker.example", ""]) | json_values,
    "sub": st.sampled_from(["svc", ""]) | json_values,
    "aud": st.sampled_from([AUDIENCE, [AUDIENCE], [AUDIENCE, 1], [], ""]) | json_values,
    "exp": st.sampled_from([NOW + 60, NOW - LEEWAY, NOW - LEEWAY + 1, 2**63 - 1, 2**64, True])
    | json_values,
    "iat": st.sampled_from([NOW, -1, 1.5]) | json_values,
    "nbf": st.sampled_from([NOW, NOW + LEEWAY, NOW + LEEWAY + 1, "now"]) | json_values,
    "jti": st.sampled_from(["j1", ""]) | json_values,
    "client_id": st.sampled_from(["svc", ""]) | json_values,
    "scope": st.sampled_from(["restaurants:read", "", "a  b"]) | json_values,
}


@st.composite
def claim_sets(draw: st.DrawFn) -> dict[str, Any]:
    base = SIGNERS["ES256"].claims
    claims: dict[str, Any] = {}
    for name, values in claim_values.items():
        choice = draw(st.sampled_from(["keep", "keep", "drop", "change"]), label=name)
        if choice == "keep" and name in base:
            claims[name] = base[name]
        elif choice == "change":
            claims[name] = draw(values, label=name)
    claims.update(draw(st.dictionaries(st.text(max_size=5), json_values, max_size=2)))
    return claims


@by_alg
def test_real_signature_over_any_claims_verifies_only_well_formed_claims(alg: SigningAlg) -> None:
    """A property that held because everything was refused would prove nothing: count the
    examples that verified, and require a share of them (about 1 in 12 with the default
    profile's examples)."""
    signer = SIGNERS[alg]
    tried: list[bytes] = []
    verified: list[bytes] = []

    @given(
        payload=claim_sets().map(lambda claims: json.dumps(claims).encode())
        | st.binary(max_size=200)
    )
    @example(payload=b"")
    @example(payload=b"[]")
    @example(payload=b'{"exp": NaN}')
    @example(payload=b'{"exp": 1' + b"0" * 30 + b"}")
    @example(payload=b"[" * 2000)
    @example(payload=json.dumps(signer.claims).encode())  # the issued claims: must verify
    def check(payload: bytes) -> None:
        tried.append(payload)
        header_bytes = json.dumps(signer.header).encode()
        message = signing_input(header_bytes, payload)
        signature = JWSRegistry.algorithms[alg].sign(message, signer.key.key)
        try:
            claims = signer.verify(f"{message.decode('ascii')}.{b64(signature)}")
        except InvalidToken:
            return
        verified.append(payload)
        sent = json.loads(payload)
        assert sent["iss"] == ISSUER == claims.issuer
        assert type(sent["exp"]) is int
        assert claims.expires_at == sent["exp"] > NOW - LEEWAY
        assert type(sent["iat"]) is int
        nbf = sent.get("nbf")
        assert nbf is None or (type(nbf) is int and nbf <= NOW + LEEWAY)
        assert claims.audience
        assert all(isinstance(aud, str) for aud in claims.audience)
        assert all(isinstance(v, str) and v for v in (claims.jti, claims.subject, claims.client_id))
        assert claims.scope == frozenset(sent.get("scope", "").split())

    check()
    assert json.dumps(signer.claims).encode() in verified
    assert len(verified) >= max(2, len(tried) // 50), f"{len(verified)} of {len(tried)} verified"
