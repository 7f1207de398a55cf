"""Abuse control for the authorization server's own endpoints, on the ``limits`` library.

Counted per process in memory by default, or shared by every instance through Redis when
``OAUTH_SERVER_REDIS_URL`` is set:

* failed client authentications per client id and per client address — RFC 6749 §2.3.1: the
  server "MUST protect any endpoint utilizing [password authentication] against brute force
  attacks". Once a budget is spent, every attempt for that client id (or from that address)
  gets 429 until the window ends, the correct secret included: otherwise guessing would go on
  at full speed. The price is that someone who knows a client id can lock it out for a window;
  the per-address budget and short windows keep that price small, and 256-bit generated
  secrets make guessing hopeless anyway;
* token requests per client and introspection requests per calling client, with defaults high
  enough never to throttle legitimate load (they stop a runaway client, not a busy one).

If the shared counter store is unreachable the limiter fails open and logs it: rate limiting
is a second line of defence, and an outage of Redis must not become an outage of OAuth.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter
from redis.asyncio import ConnectionPool

from oauth_server.audit import NO_AUDIT, AuditRecorder
from oauth_server.errors import TooManyRequests

__all__ = ["RateLimitPolicy", "RateLimiter", "parse_limit"]

log = logging.getLogger(__name__)


def parse_limit(value: str) -> RateLimitItem:
    """``"20/minute"`` → a rate limit item; raises ``ValueError`` with a clear message."""
    try:
        return parse(value)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a rate limit such as '20/minute': {exc}") from None


@dataclass(frozen=True, slots=True)
class RateLimitPolicy:
    auth_failures_per_client: str = "20/minute"
    auth_failures_per_address: str = "100/minute"
    tokens_per_client: str = "1200000/minute"
    introspections_per_client: str = "1200000/minute"


class RateLimiter:
    def __init__(
        self,
        policy: RateLimitPolicy,
        *,
        redis_url: str | None = None,
        key_prefix: str = "oauth-server",
        audit: AuditRecorder = NO_AUDIT,
    ) -> None:
        self._audit = audit
        self._audited: dict[tuple[str, str], float] = {}
        # In-memory counting only: the failure keys this process has counted, and until when.
        # A key absent here has no failures, so its budget need not be looked up — two of the
        # three counter operations of a successful request, skipped. (Redis counters are fed by
        # every instance, so there every check asks Redis.)
        self._failing: dict[tuple[str, str], float] | None = None
        storage: Storage
        # Our own pool (limits would build one we could not close at shutdown).
        self._pool = ConnectionPool.from_url(redis_url, socket_timeout=1.0) if redis_url else None
        if redis_url:
            storage = RedisStorage(
                "async+" + redis_url,
                implementation="redispy",
                key_prefix=key_prefix,
                # limits types its **options as scalars, but forwards them to redis-py, whose
                # Redis(connection_pool=...) is documented (limits: "connection_pool").
                connection_pool=self._pool,  # type: ignore[arg-type]
            )
        else:
            storage = MemoryStorage()
            self._failing = {}
        self._storage = storage
        self._limiter = FixedWindowRateLimiter(storage)
        self._failures_client = parse_limit(policy.auth_failures_per_client)
        self._failures_address = parse_limit(policy.auth_failures_per_address)
        self._tokens = parse_limit(policy.tokens_per_client)
        self._introspections = parse_limit(policy.introspections_per_client)
        self._last_outage_log = 0.0

    @property
    def shared(self) -> bool:
        return isinstance(self._storage, RedisStorage)

    async def before_authentication(self, client_id: str, address: str) -> None:
        """Refuse to even check the credentials once a failure budget is spent."""
        if address:
            await self._require(self._failures_address, "auth-failures-address", address)
        if client_id:
            await self._require(self._failures_client, "auth-failures-client", client_id)

    async def authentication_failed(self, client_id: str, address: str) -> None:
        """Count a failure; ``client_id`` is empty when the credentials were unreadable."""
        if address:
            await self._hit(self._failures_address, "auth-failures-address", address)
        if client_id:
            await self._hit(self._failures_client, "auth-failures-client", client_id)

    async def token_requested(self, client_id: str) -> None:
        await self._consume(self._tokens, "tokens", client_id)

    async def introspection_requested(self, client_id: str) -> None:
        await self._consume(self._introspections, "introspections", client_id)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()

    async def reset(self) -> None:
        """Forget every counter (tests, and an operator's escape hatch)."""
        await self._storage.reset()

    async def _require(self, item: RateLimitItem, kind: str, key: str) -> None:
        failing = self._failing
        if failing is not None and failing.get((kind, key), 0.0) < time.monotonic():
            return
        await self._enforce(self._limiter.test, item, kind, key)

    async def _consume(self, item: RateLimitItem, kind: str, key: str) -> None:
        await self._enforce(self._limiter.hit, item, kind, key)

    async def _enforce(
        self,
        check: Callable[[RateLimitItem, str, str], Awaitable[bool]],
        item: RateLimitItem,
        kind: str,
        key: str,
    ) -> None:
        try:
            allowed = await check(item, kind, key)
        except Exception as exc:
            self._outage(exc)
            return
        if not allowed:
            self._record_denial(item, kind, key)
            raise TooManyRequests(await self._retry_after(item, kind, key))

    def _record_denial(self, item: RateLimitItem, kind: str, key: str) -> None:
        """Audit a limit being hit — once a minute per limit and key, so that a flood of
        refused requests does not become a flood of audit rows."""
        now = time.monotonic()
        if now - self._audited.get((kind, key), -3600.0) < 60:
            return
        if len(self._audited) > 10_000:
            self._audited.clear()
        self._audited[(kind, key)] = now
        if kind == "auth-failures-address":
            self._audit.record("rate_limited", reason=kind, limit=str(item), ip=key)
        else:
            self._audit.record("rate_limited", reason=kind, limit=str(item), client_id=key[:256])

    async def _hit(self, item: RateLimitItem, kind: str, key: str) -> None:
        if self._failing is not None:
            if len(self._failing) > 100_000:
                now = time.monotonic()
                self._failing = {k: t for k, t in self._failing.items() if t > now}
            self._failing[(kind, key)] = time.monotonic() + item.get_expiry()
        try:
            await self._limiter.hit(item, kind, key)
        except Exception as exc:
            self._outage(exc)

    async def _retry_after(self, item: RateLimitItem, kind: str, key: str) -> int:
        try:
            stats = await self._limiter.get_window_stats(item, kind, key)
        except Exception:
            return item.get_expiry()
        return max(1, math.ceil(stats.reset_time - time.time()))

    def _outage(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._last_outage_log > 60:
            self._last_outage_log = now
            log.error("rate-limit store unreachable, limits not enforced: %s", exc)
