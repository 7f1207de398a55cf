"""OpenID Connect ID tokens (OIDC Core §2): issuance, and verification of the ones this server
issued when a client sends one back as ``id_token_hint`` (OIDC Core §3.1.2.1, RP-Initiated
Logout 1.0 §2).

An ID token is signed with the same keys as JWT access tokens (one JWKS), but its header says
``typ: JWT`` (RFC 7519 §5.1), never ``at+jwt``: the access-token verifier requires ``at+jwt``
(RFC 9068 §4), so an ID token is never accepted as an access token, and
:class:`IdTokenVerifier` refuses ``at+jwt``, so an access token is never accepted as an ID
token.

Claims. ``iss``, ``sub`` (the user's stable id), ``aud`` (the client), ``exp``, ``iat``,
``auth_time``, ``nonce`` when the authorize request had one, ``at_hash`` when an access token
is issued with it, ``sid``, ``amr``, and ``azp`` when there is more than one audience. The
claims of the ``profile`` and ``email`` scopes go to the userinfo endpoint, not into the ID
token, whenever an access token is issued (OIDC Core §5.4: "The Claims requested by the
profile, email, address, and phone scope values are returned from the UserInfo Endpoint …
when a response_type value is used that results in an Access Token being issued"). This server
supports ``response_type=code`` only, so that is always the case; :meth:`IdTokenIssuer.issue`
still puts them in the token when called without an access token, as §5.4 asks then.

Lifetime: ``OAUTH_SERVER_ID_TOKEN_TTL`` (default 300 s). An ID token is a statement about one
authentication that the client validates once, on receipt (OIDC Core §3.1.3.7); it is not a
credential to keep, so it lives briefly.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeGuard

import orjson

from oauth_server.clock import Clock
from oauth_server.errors import InvalidRequest
from oauth_server.oauth.keys import KeyRing
from oauth_server.oauth.tokens.verify.claims import MAX_TOKEN_LENGTH
from oauth_server.oauth.tokens.verify.jwt import KeySource, UnknownKid, signed_payload
from oauth_server.storage.models import User

if TYPE_CHECKING:
    from oauth_server.oauth.tokens.issue import AccessToken, Authorization

__all__ = [
    "DEFAULT_AMR",
    "ID_TOKEN_TYPE",
    "GrantIdTokens",
    "IdTokenHint",
    "IdTokenIssuer",
    "IdTokenVerifier",
    "InvalidIdTokenHint",
    "at_hash",
    "scope_claims",
]

ID_TOKEN_TYPE = "JWT"
DEFAULT_AMR: tuple[str, ...] = ("pwd",)
"""RFC 8176 §2: ``pwd``, password-based authentication (the only one the login page has)."""

# OIDC Core §5.4: the claims each scope asks for (of those this server stores).
_SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {
    "profile": ("name", "given_name", "family_name", "preferred_username", "updated_at"),
    "email": ("email", "email_verified"),
}
_ALWAYS_PRESENT = frozenset({"email_verified", "updated_at"})
"""Claims with a value even when the profile leaves them unset (a boolean, a time)."""

# OIDC Core §3.1.3.6: at_hash is the left half of the hash of the access token "where the hash
# algorithm used is the hash algorithm used in the alg Header Parameter of the ID Token's JOSE
# Header" — SHA-256 for ES256 and RS256. EdDSA/Ed25519 name no hash of their own; Ed25519 is
# built on SHA-512 (RFC 8032 §5.1), and SHA-512 is what the OpenID Foundation's certified
# libraries use for it (node's oidc-token-hash, used by node-oidc-provider and openid-client).
_AT_HASH: dict[str, Any] = {
    "ES256": hashlib.sha256,
    "RS256": hashlib.sha256,
    "Ed25519": hashlib.sha512,
    "EdDSA": hashlib.sha512,
}
_UNKNOWN_KEY = "the id_token_hint was not signed by a key of this server"


def at_hash(access_token: str, alg: str) -> str:
    """OIDC Core §3.1.3.6: base64url of the left-most half of the hash of the ASCII octets of
    the access token, with the hash of ``alg``."""
    digest = _AT_HASH[alg](access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")


def scope_claims(user: User, scope: Sequence[str] | frozenset[str]) -> dict[str, Any]:
    """The standard claims (OIDC Core §5.1) the granted ``scope`` covers (§5.4), of those the
    user has: an empty string is a claim the user has not set, and is left out (§5.3.2: "If a
    Claim is not returned, that Claim Name SHOULD be omitted")."""
    claims: dict[str, Any] = {}
    for scope_value, names in _SCOPE_CLAIMS.items():
        if scope_value not in scope:
            continue
        for name in names:
            value = getattr(user, name)
            if value or name in _ALWAYS_PRESENT:
                claims[name] = value
    return claims


class IdTokenIssuer:
    """Signs ID tokens with the key ring's active key (the key that signs access tokens)."""

    def __init__(self, ring: KeyRing, *, issuer: str, ttl: int) -> None:
        self._ring = ring
        self._issuer = issuer
        self._ttl = ttl
        self._headers: dict[str, bytes] = {}

    @property
    def ttl(self) -> int:
        return self._ttl

    def issue(
        self,
        *,
        user: User,
        client_id: str,
        nonce: str | None,
        auth_time: int,
        sid: str | None,
        access_token: str | None,
        amr: Sequence[str] = DEFAULT_AMR,
        scope: Sequence[str] | frozenset[str] = (),
        now: int,
        audience: Sequence[str] = (),
    ) -> str:
        """A compact JWS (no I/O: a plain call). ``audience``: further audiences beside the
        client, for a caller that needs them; then ``azp`` names the client (OIDC Core §2: "If
        present, it MUST contain the OAuth 2.0 Client ID of this party")."""
        key = self._ring.signing_key(now)
        audiences = [client_id, *(a for a in audience if a != client_id)]
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "sub": user.user_id,
            # §2: aud "MAY be a single case-sensitive string" when there is one audience.
            "aud": audiences[0] if len(audiences) == 1 else audiences,
            "exp": now + self._ttl,
            "iat": now,
            "auth_time": auth_time,
        }
        if len(audiences) > 1:
            claims["azp"] = client_id
        if nonce is not None:
            # §3.1.2.1/§3.1.3.7: passed through unmodified, so the client can match it.
            claims["nonce"] = nonce
        if sid is not None:
            claims["sid"] = sid  # OIDC Front-/Back-Channel Logout 1.0: the session's id
        if amr:
            claims["amr"] = list(amr)
        if access_token is not None:
            claims["at_hash"] = at_hash(access_token, key.alg)
        else:
            # §5.4: without an access token the scope's claims travel in the ID token.
            claims.update(scope_claims(user, scope))
        header = self._headers.get(key.kid)
        if header is None:  # once per key, as for access tokens
            header = self._headers[key.kid] = base64.urlsafe_b64encode(
                orjson.dumps({"typ": ID_TOKEN_TYPE, "alg": key.alg, "kid": key.kid})
            ).rstrip(b"=")
        return key.sign_compact(header, orjson.dumps(claims))


class GrantIdTokens:
    """The token endpoint's ID-token hook (:class:`oauth_server.oauth.tokens.issue.TokenService`
    calls it for a user grant whose scope has ``openid``): the grant's sign-in — user, nonce,
    auth time, session — and the access token just issued, for ``at_hash``. OIDC Core
    §3.1.3.3: the token response of such a request carries an ``id_token``; §12.2: one from a
    refresh keeps ``iss``, ``sub``, ``aud``, ``auth_time`` and ``azp`` of the original, which
    this does by construction (the same issuer, user, client and stored auth time) and leaves
    ``nonce`` out (the refresh grant carries none)."""

    def __init__(self, issuer: IdTokenIssuer, *, clock: Clock) -> None:
        self._issuer = issuer
        self._clock = clock

    async def issue(self, authorization: Authorization, access: AccessToken) -> str | None:
        context = authorization.user
        if context is None or context.user is None:
            return None
        return self._issuer.issue(
            user=context.user,
            client_id=authorization.client.client_id,
            nonce=context.nonce or None,
            auth_time=context.auth_time,
            sid=context.session_id or None,
            access_token=access.access_token,
            scope=authorization.scope,
            now=int(self._clock.now()),
        )


class InvalidIdTokenHint(InvalidRequest):
    """The ``id_token_hint`` is not an ID token this server issued (to this client).
    ``invalid_request`` (OIDC Core §3.1.2.6 has no more specific code; RP-Initiated Logout
    1.0 §2 says the OP should not act on such a hint)."""


@dataclass(frozen=True, slots=True)
class IdTokenHint:
    """What a verified ``id_token_hint`` says."""

    subject: str
    audience: tuple[str, ...]
    session_id: str | None
    expires_at: int
    expired: bool


class IdTokenVerifier:
    """Verifies ID tokens this server issued, for ``id_token_hint``.

    Checks: size; header ``typ`` ``JWT`` (``at+jwt`` refused: an access token is not an ID
    token), no embedded or remote keys, no ``crit``, algorithm pinned to the key; signature
    (joserfc, with the key ring's keys); ``iss`` exact; ``sub`` present; ``aud`` includes
    ``client_id`` when given. Expiry is reported, not enforced: RP-Initiated Logout 1.0 §2 —
    "The OP need not be concerned with the expiration of the ID Token when it is used as an
    id_token_hint" (a logout often comes long after sign-in). A hint signed by a key that has
    left the key ring is refused.
    """

    def __init__(self, keys: KeySource, *, issuer: str, clock: Clock) -> None:
        self._keys = keys
        self._issuer = issuer
        self._clock = clock

    async def verify_hint(self, token: str, client_id: str | None = None) -> IdTokenHint:
        if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
            raise InvalidIdTokenHint("the id_token_hint is not an ID token")
        now = self._clock.now()
        try:
            payload = self._verify_signature(token, now)
        except UnknownKid:
            if not await self._keys.reload_for_unknown_kid():
                raise InvalidIdTokenHint(_UNKNOWN_KEY) from None
            try:
                payload = self._verify_signature(token, now)
            except UnknownKid:
                raise InvalidIdTokenHint(_UNKNOWN_KEY) from None
        return self._claims(payload, now, client_id)

    def _verify_signature(self, token: str, now: float) -> bytes:
        return signed_payload(
            token,
            self._keys,
            now,
            # RFC 7519 §5.1: "JWT" is the recommended value, compared case-insensitively.
            typ_ok=lambda typ: typ.upper() == ID_TOKEN_TYPE,
            error=InvalidIdTokenHint,
            not_this_type="the id_token_hint is not an ID token (typ)",
            subject="the id_token_hint",
            malformed="the id_token_hint is malformed or its signature is invalid",
        )

    def _claims(self, payload: bytes, now: float, client_id: str | None) -> IdTokenHint:
        try:
            claims = orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise InvalidIdTokenHint("the id_token_hint's claims are not JSON") from None
        if not isinstance(claims, dict):
            raise InvalidIdTokenHint("the id_token_hint's claims are not an object")
        if claims.get("iss") != self._issuer:
            raise InvalidIdTokenHint("the id_token_hint was issued by someone else")
        sub, exp, iat = claims.get("sub"), claims.get("exp"), claims.get("iat")
        if not (_is_text(sub) and _is_int(exp) and _is_int(iat)):
            raise InvalidIdTokenHint("the id_token_hint lacks sub, exp or iat")
        aud = claims.get("aud")
        audience = (aud,) if isinstance(aud, str) else tuple(aud) if isinstance(aud, list) else ()
        if not (audience and all(_is_text(a) for a in audience)):
            raise InvalidIdTokenHint("the id_token_hint has no audience")
        if client_id is not None and client_id not in audience:
            raise InvalidIdTokenHint("the id_token_hint was issued to another client")
        sid = claims.get("sid")
        return IdTokenHint(
            subject=sub,
            audience=audience,
            session_id=sid if _is_text(sid) else None,
            expires_at=exp,
            expired=exp <= now,
        )


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_text(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and bool(value)
