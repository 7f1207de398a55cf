"""JWT forgeries and a static key source shared by the JWT verifier's tests.

The forgeries are the bug classes other JWT libraries shipped (RFC 8725): ``alg: none``,
HS256 signed with the public key, attacker keys in ``jwk``/``jku``/``x5u``/``x5c``, unknown
``kid``, ``crit``, wrong ``typ``, oversized tokens, and claim tampering.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import jwt as pyjwt
from joserfc import jwt

from oauth_server.oauth.keys import LoadedKey, generate_private_jwk

ISSUER = "https://as.example"
NOW = 1_800_000_000


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(obj: dict[str, Any]) -> str:
    return b64(json.dumps(obj).encode())


class StaticKeys:
    """Known keys, plus ``pending`` ones that appear only after a reload."""

    def __init__(self, *keys: LoadedKey) -> None:
        self.keys = {key.kid: key for key in keys}
        self.pending: dict[str, LoadedKey] = {}
        self.reloads = 0

    def verification_key(self, kid: str, now: float) -> LoadedKey | None:
        return self.keys.get(kid)

    async def reload_for_unknown_kid(self) -> bool:
        self.reloads += 1
        if self.reloads > 1:
            return False  # rate-limited
        self.keys.update(self.pending)
        return True


def make_key(kid: str, alg: str = "ES256") -> LoadedKey:
    key = generate_private_jwk(alg)  # type: ignore[arg-type]
    public = {**key.as_dict(private=False), "kid": kid, "alg": alg, "use": "sig"}
    return LoadedKey(kid, alg, 1, 0, key, public)  # type: ignore[arg-type]


KEY = make_key("k1")
CLAIMS = {
    "iss": ISSUER,
    "sub": "app",
    "aud": "https://rs.example",
    "exp": NOW + 3600,
    "iat": NOW,
    "jti": "jti-1",
    "client_id": "app",
    "scope": "a b",
}
HEADER = {"typ": "at+jwt", "alg": "ES256", "kid": "k1"}


def sign(
    claims: dict[str, Any] | None = None,
    header: dict[str, Any] | None = None,
    key: LoadedKey = KEY,
) -> str:
    return jwt.encode(header or HEADER, claims or CLAIMS, key.key, algorithms=[key.alg])


def hs256_with_public_key() -> str:
    """The classic confusion: HMAC keyed with the verifier's public key (which anyone has)."""
    signing_input = f"{segment({**HEADER, 'alg': 'HS256'})}.{segment(CLAIMS)}"
    mac = hmac.new(KEY.key.as_pem(private=False), signing_input.encode(), hashlib.sha256)
    return f"{signing_input}.{b64(mac.digest())}"


def with_crit() -> str:
    private = KEY.key.as_pem(private=True)
    return pyjwt.encode(CLAIMS, private, algorithm="ES256", headers={**HEADER, "crit": ["exp"]})


def alg_none() -> str:
    return f"{segment({**HEADER, 'alg': 'none'})}.{segment(CLAIMS)}."


def attacker_key_in_header(member: str) -> str:
    attacker = make_key("k1")
    extra: Any = attacker.public_jwk if member == "jwk" else "https://evil.example/keys"
    if member == "x5c":
        extra = ["MIIB"]
    return sign(header={**HEADER, member: extra}, key=attacker)


def swap_payload(token: str, claims: dict[str, Any]) -> str:
    header, _, signature = token.split(".")
    return f"{header}.{segment(claims)}.{signature}"


FORGERIES: dict[str, Callable[[], str]] = {
    "alg none": alg_none,
    "HS256 signed with the public key": hs256_with_public_key,
    "embedded jwk": lambda: attacker_key_in_header("jwk"),
    "jku": lambda: attacker_key_in_header("jku"),
    "x5u": lambda: attacker_key_in_header("x5u"),
    "x5c": lambda: attacker_key_in_header("x5c"),
    "other key, same kid": lambda: sign(key=make_key("k1")),
    "unknown kid": lambda: sign(header={**HEADER, "kid": "nope"}, key=make_key("nope")),
    "no kid": lambda: sign(header={"typ": "at+jwt", "alg": "ES256"}),
    "crit": with_crit,
    "typ JWT": lambda: sign(header={**HEADER, "typ": "JWT"}),
    "no typ": lambda: sign(header={"alg": "ES256", "kid": "k1"}),
    "alg differs from the key's": lambda: sign(
        header={**HEADER, "alg": "RS256"}, key=make_key("k1", "RS256")
    ),
    "tampered claims": lambda: swap_payload(sign(), {**CLAIMS, "scope": "admin"}),
    "truncated signature": lambda: sign()[:-10],
    "two segments": lambda: ".".join(sign().split(".")[:2]),
    "garbage": lambda: "a.b.c",
    "oversized": lambda: sign(claims={**CLAIMS, "pad": "x" * 5000}),
    "other issuer": lambda: sign(claims={**CLAIMS, "iss": "https://evil.example"}),
    "expired": lambda: sign(claims={**CLAIMS, "exp": NOW - 31}),
    "not yet valid": lambda: sign(claims={**CLAIMS, "nbf": NOW + 31}),
    "string exp": lambda: sign(claims={**CLAIMS, "exp": str(NOW + 3600)}),
    "boolean iat": lambda: sign(claims={**CLAIMS, "iat": True}),
    "no jti": lambda: sign(claims={k: v for k, v in CLAIMS.items() if k != "jti"}),
    "no client_id": lambda: sign(claims={k: v for k, v in CLAIMS.items() if k != "client_id"}),
    "no aud": lambda: sign(claims={k: v for k, v in CLAIMS.items() if k != "aud"}),
    "numeric scope": lambda: sign(claims={**CLAIMS, "scope": 5}),
}
