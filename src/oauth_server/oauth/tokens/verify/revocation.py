"""What this process knows to be revoked, kept in step through the change feed.

* :class:`RevokedJtis`: single revoked JWT ids.
* :class:`RevokedClients`: client-wide cutoffs — every token (JWT or opaque) issued to the
  client at or before the cutoff second is void, because the client was deleted or
  ``oauth-server clients revoke-tokens`` ran.

Tokens are verified without a database round trip (JWTs always, opaque tokens from the cache),
so a revocation must reach every process: the revoking process applies it at once, the others
within one change feed poll (``OAUTH_SERVER_CACHE_SYNC_INTERVAL``). Entries are dropped once no
token they cover can still be accepted, so both stay as small as the live revocations.
"""

from __future__ import annotations

from oauth_server.clock import Clock
from oauth_server.oauth.tokens.verify.claims import AccessClaims
from oauth_server.storage.models import JTI_CHANGE, Change, RevokedToken
from oauth_server.storage.protocols import RevocationRepository

__all__ = ["JTI_CHANGE", "RevokedClients", "RevokedJtis"]


class RevokedJtis:
    def __init__(self, *, clock: Clock, max_token_ttl: int) -> None:
        self._clock = clock
        self._max_token_ttl = max_token_ttl
        self._expiry: dict[str, int] = {}
        self._next_prune = 0.0

    def __len__(self) -> int:
        return len(self._expiry)

    def add(self, jti: str, expires_at: int) -> None:
        self._expiry[jti] = max(expires_at, self._expiry.get(jti, 0))
        self._prune()

    async def revoke(self, repository: RevocationRepository, token: RevokedToken) -> bool:
        """Record the revocation in the store (which announces the ``jti`` to every process)
        and here at once; ``True`` only if this call recorded it."""
        added = await repository.add(token=token)
        self.add(token.jti, token.expires_at)
        return added

    def is_revoked(self, jti: str) -> bool:
        return jti in self._expiry

    async def load(self, repository: RevocationRepository) -> None:
        for token in await repository.active(now=int(self._clock.now())):
            self._expiry[token.jti] = token.expires_at

    def on_change(self, change: Change) -> None:
        # The feed carries only the id; no token it names outlives the longest token lifetime.
        self.add(change.key, int(self._clock.now()) + self._max_token_ttl)

    def _prune(self) -> None:
        now = self._clock.now()
        if now < self._next_prune:
            return
        self._next_prune = now + 60
        self._expiry = {jti: exp for jti, exp in self._expiry.items() if exp > now}


class RevokedClients:
    """Client-wide cutoffs: a token whose ``iat`` is at or before its client's cutoff is void.

    ``iat`` has a resolution of one second, so a token issued in the very second of the
    revocation (even just after it) is void too: the revocation never misses a token issued
    before it. ``max_token_age`` is the longest a verifier accepts a token after its ``iat``
    (the lifetime cap plus leeways); an entry older than that covers nothing any more.
    """

    def __init__(self, *, clock: Clock, max_token_age: int) -> None:
        self._clock = clock
        self._max_token_age = max_token_age
        self._cutoff: dict[str, int] = {}
        self._next_prune = 0.0

    def __len__(self) -> int:
        return len(self._cutoff)

    def add(self, client_id: str, revoked_at: int) -> None:
        self._cutoff[client_id] = max(revoked_at, self._cutoff.get(client_id, revoked_at))
        self._prune()

    def voids(self, claims: AccessClaims) -> bool:
        cutoff = self._cutoff.get(claims.client_id)
        return cutoff is not None and claims.issued_at <= cutoff

    async def load(self, repository: RevocationRepository) -> None:
        for revocation in await repository.active_clients(now=int(self._clock.now())):
            self.add(revocation.client_id, revocation.revoked_at)

    def on_change(self, change: Change) -> None:
        revoked_at, _, client_id = change.key.partition(" ")
        if revoked_at.isdigit() and client_id:
            self.add(client_id, int(revoked_at))

    def _prune(self) -> None:
        now = self._clock.now()
        if now < self._next_prune:
            return
        self._next_prune = now + 60
        oldest = now - self._max_token_age
        self._cutoff = {cid: cut for cid, cut in self._cutoff.items() if cut >= oldest}
