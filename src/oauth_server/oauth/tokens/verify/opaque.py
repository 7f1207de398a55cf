"""Verification of opaque (split) access tokens against the token store, with a cache.

A value the server never minted (its checksum fails: :mod:`oauth_server.oauth.tokens.format`)
is refused before anything else, without a read and before the first ``await``, with the
unknown token's answer: garbage costs no lookup and never waits behind other requests.

The selector finds the row; the verifier's SHA-256 must equal the stored one (constant-time).
That comparison comes first: until it has passed, nothing about the row is told — a wrong,
truncated or borrowed secret is refused exactly like an unknown token, whether the row is
live, revoked or expired. Only then are revocation, expiry, the lifetime cap and the client's
cutoff (:class:`~oauth_server.oauth.tokens.verify.revocation.RevokedClients`) checked.

A found row (revoked or not) is remembered by selector until the token expires or for five
minutes, whichever is sooner — the verifier is still checked on every use. A revocation
evicts it at once in the revoking process and, through the change feed, within
``OAUTH_SERVER_CACHE_SYNC_INTERVAL`` in every other. The cache is consulted only while the
change feed is being read (``feed_current``): a process that cannot read it — the database is
cut — reads the row instead (and answers 503 if it cannot), so a revocation made elsewhere is
never outlived by a cached answer. A lookup that was in flight when an eviction arrived is not
cached (a generation counter), so the row it read before the revocation cannot outlive it.
Unknown selectors are never cached: a token issued a moment ago by another instance must work
here too.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass

from oauth_server.cache import TTLCache
from oauth_server.clock import Clock
from oauth_server.errors import InvalidToken
from oauth_server.oauth.tokens.format import TokenCodec
from oauth_server.oauth.tokens.verify.claims import AccessClaims
from oauth_server.oauth.tokens.verify.revocation import RevokedClients
from oauth_server.storage.models import AccessTokenRecord, Change
from oauth_server.storage.protocols import AccessTokenRepository

__all__ = ["OpaqueToken", "OpaqueTokenVerifier"]

_CACHE_TTL_CAP = 300.0
# Compared against when the selector is unknown, so that path does the same work.
_DUMMY_HASH = hashlib.sha256(b"no such token").digest()


@dataclass(frozen=True, slots=True)
class _Entry:
    verifier_hash: bytes
    claims: AccessClaims
    revoked: bool


@dataclass(frozen=True, slots=True)
class OpaqueToken:
    """A stored token whose secret matched, whatever its state (see
    :meth:`OpaqueTokenVerifier.find`)."""

    selector: bytes
    client_id: str


class OpaqueTokenVerifier:
    def __init__(
        self,
        repository: AccessTokenRepository,
        *,
        codec: TokenCodec,
        issuer: str,
        clock: Clock,
        revoked_clients: RevokedClients | None = None,
        max_lifetime: int | None = None,
        feed_current: Callable[[], bool] | None = None,
        cache_size: int = 100_000,
    ) -> None:
        self._repository = repository
        self._codec = codec
        self._feed_current = feed_current
        self._issuer = issuer
        self._clock = clock
        self._revoked_clients = revoked_clients
        self._max_lifetime = max_lifetime
        self._cache: TTLCache[bytes, _Entry] = TTLCache(max_entries=cache_size)
        self._generation = 0

    async def verify(self, token: str) -> AccessClaims:
        parsed = self._codec.parse("access_token", token)
        if parsed is None:
            raise InvalidToken("the access token is not valid")
        selector, verifier_hash = parsed
        found, entry = self._cache.get(selector)
        if found and self._feed_current is not None and not self._feed_current():
            found = False  # evictions may be missing: the database decides
        if not found or entry is None:
            entry = await self._load(selector)
        if entry is None:
            hmac.compare_digest(verifier_hash, _DUMMY_HASH)
            raise InvalidToken("the access token is not valid")
        # The secret first: a wrong one must not learn whether the row is revoked or expired.
        if not hmac.compare_digest(verifier_hash, entry.verifier_hash):
            raise InvalidToken("the access token is not valid")
        claims = entry.claims
        if entry.revoked:
            raise InvalidToken("the access token was revoked")
        if claims.expires_at <= self._clock.now():
            raise InvalidToken("the access token has expired")
        if self._max_lifetime is not None and (
            claims.expires_at - claims.issued_at > self._max_lifetime
        ):
            raise InvalidToken("the access token's lifetime exceeds the server's maximum")
        if self._revoked_clients is not None and self._revoked_clients.voids(claims):
            raise InvalidToken("the access token was revoked")
        return claims

    async def _load(self, selector: bytes) -> _Entry | None:
        generation = self._generation
        record = await self._repository.get(selector=selector)
        if record is None:
            return None
        entry = _Entry(record.verifier_hash, self._claims(record), record.revoked_at is not None)
        # An eviction while the row was being read may be the revocation of this very token:
        # then the row may predate it and must not be remembered (the revocation wins).
        if generation == self._generation:
            ttl = min(record.expires_at - self._clock.now(), _CACHE_TTL_CAP)
            self._cache.set(selector, entry, ttl)
        return entry

    def _claims(self, record: AccessTokenRecord) -> AccessClaims:
        return AccessClaims(
            client_id=record.client_id,
            subject=record.subject,
            scope=frozenset(record.scope.split()),
            issued_at=record.issued_at,
            expires_at=record.expires_at,
            audience=tuple(record.audience.split()),
            issuer=self._issuer,
            scope_text=record.scope,
            token_format="opaque",
        )

    async def find(self, token: str) -> OpaqueToken | None:
        """The stored token ``token`` names, revoked, expired or not, when its secret matches
        (constant-time); ``None`` otherwise. Read from the store, for revocation (RFC 7009),
        which must find a token whatever its cached state."""
        parsed = self._codec.parse("access_token", token)
        if parsed is None:
            return None
        selector, verifier_hash = parsed
        record = await self._repository.get(selector=selector)
        if record is None:
            hmac.compare_digest(verifier_hash, _DUMMY_HASH)
            return None
        if not hmac.compare_digest(verifier_hash, record.verifier_hash):
            return None
        return OpaqueToken(selector, record.client_id)

    async def revoke(self, token: OpaqueToken, *, now: int) -> bool:
        """Revoke in the store (which announces it to every process through the change feed)
        and forget it here at once; ``True`` only if this call revoked it."""
        revoked = await self._repository.revoke(selector=token.selector, now=now)
        self.forget(token.selector)
        return revoked

    def forget(self, selector: bytes) -> None:
        self._generation += 1
        self._cache.pop(selector)

    def on_change(self, change: Change) -> None:
        with suppress(ValueError):  # not a hex hash: nothing of ours
            self.forget(bytes.fromhex(change.key))
