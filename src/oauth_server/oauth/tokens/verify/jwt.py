"""Local verification of RFC 9068 JWT access tokens.

Checks, in order, each one a known attack on JWT libraries when missing (RFC 8725):

1. size cap before any decoding;
2. header: ``typ`` is ``at+jwt`` (RFC 9068 §4); no embedded or remote keys (``jwk``, ``jku``,
   ``x5u``, ``x5c``: the verifier never trusts a key the token brings); no ``crit``
   (RFC 7515 §4.1.11: unknown critical extensions must be rejected); a ``kid`` we know;
3. algorithm pinned per key: the header's ``alg`` must be the key's own, from an allowlist of
   asymmetric algorithms, so ``none`` and HS256-signed-with-the-public-key both fail;
4. signature (joserfc);
5. claims: ``iss`` exact, ``exp``/``nbf`` with leeway, the RFC 9068 §2.2 required claims;
   ``iat`` not in the future and ``exp - iat`` within the server's maximum lifetime (plus
   leeway), so a token minted with a stolen or misused key cannot live for years;
6. revocation by ``jti``, and of every token of its client issued up to a cutoff (a deleted
   client, ``clients revoke-tokens``) — on cached results too.

The audience is checked by the caller (:class:`ResourceGuard`), because introspection on the
authorization server accepts tokens for every audience.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeGuard

import orjson
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, RSAKey

from oauth_server.algorithms import SIGNING_ALGS
from oauth_server.cache import TTLCache
from oauth_server.clock import Clock
from oauth_server.errors import InvalidToken
from oauth_server.oauth.tokens.verify.claims import MAX_TOKEN_LENGTH, AccessClaims
from oauth_server.oauth.tokens.verify.revocation import RevokedClients, RevokedJtis

__all__ = [
    "FORBIDDEN_HEADERS",
    "JwtVerifier",
    "KeySource",
    "UnknownKid",
    "VerificationKey",
    "looks_like_jwt",
    "signed_payload",
]

FORBIDDEN_HEADERS = ("jwk", "jku", "x5u", "x5c", "crit")
_TYPES = ("at+jwt", "application/at+jwt")
_CACHE_TTL_CAP = 300.0


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2


class VerificationKey(Protocol):
    @property
    def alg(self) -> str: ...
    @property
    def key(self) -> ECKey | RSAKey | OKPKey: ...


class KeySource(Protocol):
    def verification_key(self, kid: str, now: float) -> VerificationKey | None: ...

    async def reload_for_unknown_kid(self) -> bool:
        """Refresh the keys (rate-limited); ``True`` if a refresh happened."""
        ...


class UnknownKid(Exception):
    """The token names a key this process does not know (yet): the caller may reload once."""


def signed_payload(
    token: str,
    keys: KeySource,
    now: float,
    *,
    typ_ok: Callable[[str], bool],
    error: type[Exception],
    not_this_type: str,
    subject: str,
    malformed: str,
) -> bytes:
    """The JWS checks every JWT this server verifies shares (access tokens, ID token hints),
    RFC 8725 §3.1 and §3.11: the ``typ`` the caller accepts; no header that brings its own key
    (``jwk``, ``jku``, ``x5u``, ``x5c``) and no ``crit``; an allowed ``alg`` and a ``kid`` naming
    one of our keys, whose own algorithm it must be (no algorithm confusion). Raises ``error``
    with the given wording, or :class:`UnknownKid`; returns the verified payload."""

    def select_key(obj: Any) -> ECKey | RSAKey | OKPKey:
        header = obj.headers()
        typ = header.get("typ")
        if not isinstance(typ, str) or not typ_ok(typ):
            raise error(not_this_type)
        for name in FORBIDDEN_HEADERS:
            if name in header:
                raise error(f"{subject} header must not contain {name}")
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in SIGNING_ALGS or not isinstance(kid, str):
            raise error(f"{subject}'s algorithm or key id is not accepted")
        key = keys.verification_key(kid, now)
        if key is None:
            raise UnknownKid
        if key.alg != alg:
            raise error(f"{subject}'s algorithm does not match its key")
        return key.key

    try:
        signed = jws.deserialize_compact(token, select_key, algorithms=SIGNING_ALGS)
    except (error, UnknownKid):
        raise
    except (JoseError, ValueError, TypeError, KeyError):
        raise error(malformed) from None
    return signed.payload


class JwtVerifier:
    def __init__(
        self,
        keys: KeySource,
        *,
        issuer: str,
        clock: Clock,
        leeway: int = 30,
        revoked: RevokedJtis | None = None,
        revoked_clients: RevokedClients | None = None,
        max_lifetime: int | None = None,
        cache_size: int = 100_000,
    ) -> None:
        """``max_lifetime``: the longest ``exp - iat`` accepted (beyond ``leeway``); ``None``
        for a resource server that does not know the issuer's setting."""
        self._keys = keys
        self._issuer = issuer
        self._clock = clock
        self._leeway = leeway
        self._revoked = revoked
        self._revoked_clients = revoked_clients
        self._max_lifetime = max_lifetime
        self._cache: TTLCache[str, AccessClaims] = TTLCache(max_entries=cache_size)

    def clear_cache(self) -> None:
        """Forget verified tokens (after a key was withdrawn)."""
        self._cache.clear()

    async def verify(self, token: str) -> AccessClaims:
        now = self._clock.now()
        found, cached = self._cache.get(token)
        if found and cached is not None:
            if cached.expires_at + self._leeway <= now:
                raise InvalidToken("the access token has expired")
            self._check_revoked(cached)
            return cached
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidToken("the access token is too long")
        try:
            payload = self._verify_signature(token, now)
        except UnknownKid:
            if not await self._keys.reload_for_unknown_kid():
                raise InvalidToken("the access token was signed with an unknown key") from None
            try:
                payload = self._verify_signature(token, now)
            except UnknownKid:
                raise InvalidToken("the access token was signed with an unknown key") from None
        claims = self._claims(payload, now)
        self._check_revoked(claims)
        self._cache.set(token, claims, min(claims.expires_at - now, _CACHE_TTL_CAP))
        return claims

    def _verify_signature(self, token: str, now: float) -> bytes:
        return signed_payload(
            token,
            self._keys,
            now,
            typ_ok=lambda typ: typ.lower() in _TYPES,
            error=InvalidToken,
            not_this_type="the token is not a JWT access token (typ)",
            subject="the token",
            malformed="the access token is malformed or its signature is invalid",
        )

    def _claims(self, payload: bytes, now: float) -> AccessClaims:
        try:
            claims = orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise InvalidToken("the access token's claims are not JSON") from None
        if not isinstance(claims, dict):
            raise InvalidToken("the access token's claims are not an object")
        if claims.get("iss") != self._issuer:
            raise InvalidToken("the access token was issued by someone else")
        exp, iat, nbf = claims.get("exp"), claims.get("iat"), claims.get("nbf")
        if not (_is_int(exp) and _is_int(iat) and (nbf is None or _is_int(nbf))):
            raise InvalidToken("the access token's time claims are malformed")
        if exp + self._leeway <= now:
            raise InvalidToken("the access token has expired")
        if isinstance(nbf, int) and nbf - self._leeway > now:
            raise InvalidToken("the access token is not valid yet")
        if iat - self._leeway > now:
            raise InvalidToken("the access token was issued in the future")
        if self._max_lifetime is not None and exp - iat > self._max_lifetime + self._leeway:
            raise InvalidToken("the access token's lifetime exceeds the server's maximum")
        aud = claims.get("aud")
        audience = (aud,) if isinstance(aud, str) else tuple(aud) if isinstance(aud, list) else ()
        if not (audience and all(isinstance(a, str) for a in audience)):
            raise InvalidToken("the access token has no audience")
        jti, sub, client_id = claims.get("jti"), claims.get("sub"), claims.get("client_id")
        if not (_is_text(jti) and _is_text(sub) and _is_text(client_id)):
            raise InvalidToken("the access token lacks jti, sub or client_id")
        scope = claims.get("scope", "")
        if not isinstance(scope, str):
            raise InvalidToken("the access token's scope is malformed")
        return AccessClaims(
            client_id=client_id,
            subject=sub,
            scope=frozenset(scope.split()),
            issued_at=iat,
            expires_at=exp,
            audience=audience,
            issuer=self._issuer,
            jti=jti,
            not_before=nbf,
            scope_text=scope,
            token_format="jwt",
        )

    def _check_revoked(self, claims: AccessClaims) -> None:
        if self._revoked is not None and claims.jti and self._revoked.is_revoked(claims.jti):
            raise InvalidToken("the access token was revoked")
        if self._revoked_clients is not None and self._revoked_clients.voids(claims):
            raise InvalidToken("the access token was revoked")


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_text(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and bool(value)
