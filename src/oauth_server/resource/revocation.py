"""The set of revoked JWT ids this process knows, kept in step through the change feed.

JWT access tokens are verified without a database round trip, so a revocation must reach
every process: the revoking process adds the ``jti`` at once, the others within one change
feed poll (``OAUTH_SERVER_CACHE_SYNC_INTERVAL``). Entries are dropped once the token they
name has expired, so the set stays as small as the number of live revoked tokens.
"""

from __future__ import annotations

from oauth_server.clock import Clock
from oauth_server.storage.models import JTI_CHANGE, Change
from oauth_server.storage.protocols import RevocationRepository

__all__ = ["JTI_CHANGE", "RevokedJtis"]


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
