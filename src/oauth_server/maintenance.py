"""Keeps the database bounded: purges what nothing will read again, in small batches.

What goes, and when (times from the injected clock):

* opaque access tokens ``grace`` seconds after they expired (revoked or not);
* revocations of JWTs ``grace`` seconds after the tokens expired — ``grace`` (10 minutes)
  exceeds the largest ``OAUTH_SERVER_JWT_LEEWAY``, so no revoked token can pass a check
  in the meantime — and client-wide revocations ``grace`` seconds after the last token they
  cover could have expired;
* change-feed entries older than ``change_retention``: readers poll every
  ``OAUTH_SERVER_CACHE_SYNC_INTERVAL`` and stop waiting for a missing entry after 30 s, and a
  starting process reads from the newest entry, which is always kept. The services keep
  entries an hour, or as long as an access token lives if that is longer
  (:func:`change_retention`);
* sign-in rows ``grace`` seconds after they expired: authorization codes (used or not; a
  replay of a used code is still recognised, and revokes, until then), refresh tokens past
  their idle expiry, refresh families past their absolute expiry, the records of access
  tokens issued from codes and families, browser sessions that expired or ended, and
  interactions that expired or completed (consents are kept until revoked);
* signing keys ``key_margin`` (a day) after their verification window ended
  (:func:`oauth_server.oauth.keys.expired_keys`; never the newest key).

Each table is drained with ``DELETE … LIMIT batch_size`` statements, each its own short
transaction, with a ``pause`` between them, until a batch comes back short; token writes go
on in between. Several instances may purge at the same moment: every delete is idempotent and
concurrent purgers skip each other's rows (:mod:`oauth_server.storage.sql.purge`), so no lock
is needed. The background pass runs every ``interval`` seconds, jittered by ±25 % so that
instances started together drift apart.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import asdict, dataclass
from typing import Protocol

from oauth_server.background import Periodic
from oauth_server.clock import Clock
from oauth_server.oauth.keys import KeyManager
from oauth_server.storage.errors import log_background_failure
from oauth_server.storage.protocols import Storage

__all__ = ["PurgeReport", "Purger", "change_retention"]

log = logging.getLogger(__name__)


def change_retention(*, access_token_ttl: int, jwt_leeway: int) -> int:
    """How long change-feed entries are kept: an hour, and at least as long as a token lives.

    A process that could not reach the database for a while catches up from its high-water
    mark when it can again. Cached clients, keys and opaque tokens expire on their own within
    minutes, but a revoked JWT id is learnt only from the feed: had its entry been purged
    while the token could still be presented, that process would accept the revoked token.
    """
    return max(3600, access_token_ttl + jwt_leeway + 60)


class BatchDelete(Protocol):
    async def __call__(self, *, before: int, limit: int) -> int: ...


@dataclass(frozen=True, slots=True)
class PurgeReport:
    """How many rows one pass deleted, per table, and which signing keys."""

    opaque_tokens: int = 0
    revoked_tokens: int = 0
    changes: int = 0
    signing_keys: tuple[str, ...] = ()
    client_revocations: int = 0
    authorization_codes: int = 0
    refresh_tokens: int = 0
    refresh_families: int = 0
    issued_tokens: int = 0
    browser_sessions: int = 0
    interactions: int = 0


class Purger:
    def __init__(
        self,
        storage: Storage,
        *,
        keys: KeyManager,
        clock: Clock,
        interval: float = 300.0,
        batch_size: int = 1000,
        pause: float = 0.1,
        grace: int = 600,
        change_retention: int = 3600,
        key_margin: int = 86_400,
    ) -> None:
        self._storage = storage
        self._keys = keys
        self._clock = clock
        self._interval = interval
        self._batch_size = batch_size
        self._pause = pause
        self._grace = grace
        self._change_retention = change_retention
        self._key_margin = key_margin
        self._background = Periodic(
            "purge",
            self._run_logged,
            interval=lambda: interval * random.uniform(0.75, 1.25),  # noqa: S311 - jitter
            # The database may be down; the next pass catches up.
            on_error=lambda exc: log_background_failure(log, "purge", exc),
        )

    async def run_once(self) -> PurgeReport:
        """One full pass over every table."""
        now = int(self._clock.now())
        tokens = await self._drain(self._storage.tokens.purge_expired, now - self._grace)
        revoked = await self._drain(self._storage.revocations.purge_expired, now - self._grace)
        changes = await self._drain(self._storage.changes.purge_older, now - self._change_retention)
        kids = await self._keys.purge_expired(margin=self._key_margin)
        clients = await self._drain(
            self._storage.revocations.purge_expired_clients, now - self._grace
        )
        before = now - self._grace
        storage = self._storage
        return PurgeReport(
            tokens,
            revoked,
            changes,
            tuple(kids),
            clients,
            authorization_codes=await self._drain(storage.codes.purge_expired, before),
            refresh_tokens=await self._drain(storage.refresh_tokens.purge_expired, before),
            refresh_families=await self._drain(
                storage.refresh_tokens.purge_expired_families, before
            ),
            issued_tokens=await self._drain(storage.refresh_tokens.purge_expired_issued, before),
            browser_sessions=await self._drain(storage.sessions.purge_expired, before),
            interactions=await self._drain(storage.interactions.purge_expired, before),
        )

    async def _drain(self, purge: BatchDelete, before: int) -> int:
        total = 0
        while True:
            deleted = await purge(before=before, limit=self._batch_size)
            total += deleted
            if deleted < self._batch_size:
                return total
            await asyncio.sleep(self._pause)

    async def start(self) -> None:
        """Purge in the background every ``interval`` seconds (never when it is 0)."""
        if self._interval > 0:
            self._background.start()

    async def stop(self) -> None:
        await self._background.stop()

    @property
    def running(self) -> bool:
        return self._background.running

    async def _run_logged(self) -> None:
        started = time.monotonic()
        report = await self.run_once()
        if report != PurgeReport():
            fields = {"event": "purge", **asdict(report)}
            fields["duration_ms"] = round((time.monotonic() - started) * 1000, 1)
            log.info("purged %s", report, extra={"fields": fields})
