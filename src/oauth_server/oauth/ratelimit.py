"""Abuse control for the authorization server's own endpoints, on the ``limits`` library.

Counted per process in memory by default, or shared by every instance through Redis when
``OAUTH_SERVER_REDIS_URL`` is set. Either way an instance looks a failure budget up only once it
has itself counted a failure for that key, so a successful request costs the store nothing; with
Redis, a budget spent through other instances allows at most one more attempt here.

* failed client authentications — RFC 6749 §2.3.1: the server "MUST protect any endpoint
  utilizing [password authentication] against brute force attacks" — in three budgets:

  - per (client id, address), small (20 a minute): once spent, that client id gets 429 *from
    that address* until the window ends, the correct secret included (otherwise guessing would
    go on at full speed). Someone who knows a client id can lock out only their own address:
    the client keeps working from its own;
  - per client id, a ceiling far above it (1000 a minute) that only a distributed attack
    reaches; then the client id is locked out everywhere for the window — the price of
    stopping guessing from many addresses (256-bit generated secrets make it hopeless anyway);
  - per address, across client ids (credential stuffing);

* failed bearer-token validations at the resource server per address (random opaque tokens,
  garbage JWTs: each may cost a database read). Once spent, that address's bearer requests get
  429 before the token is looked at; a valid token costs the limiter nothing while no address is
  locked out (:meth:`RateLimiter.bearer_failed` is called only on failure);
* failed sign-ins on the login page per username (known or not: a lockout must not tell
  whether the account exists) and per address;
* requests to the client registration endpoints (RFC 7591, RFC 7592) per address, each
  counted before its token or document is looked at;
* token requests per client and introspection requests per calling client, with defaults high
  enough never to throttle legitimate load (they stop a runaway client, not a busy one).

Per-address budgets count an IPv6 address by its /64 (:func:`oauth_server.addresses.address_key`).
Each refusal is audited as ``rate_limited`` with the budget as ``reason``, at most once a minute
(by the injected clock) per budget and key.

If the shared counter store is unreachable the limiter fails open and logs it: rate limiting
is a second line of defence, and an outage of Redis must not become an outage of OAuth.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter
from redis.asyncio import ConnectionPool

from oauth_server.addresses import address_key
from oauth_server.audit import NO_AUDIT, AuditFields, AuditRecorder
from oauth_server.clock import Clock, SystemClock
from oauth_server.errors import TooManyRequests
from oauth_server.observer import NO_OBSERVER, Observer

__all__ = ["RateLimitPolicy", "RateLimiter", "parse_limit"]

log = logging.getLogger(__name__)

# Budget names: the ``reason`` of ``rate_limited`` audit events, and part of the counter keys.
FAILURES_ADDRESS = "auth-failures-address"
FAILURES_CLIENT_ADDRESS = "auth-failures-client-address"
FAILURES_CLIENT = "auth-failures-client"
BEARER_FAILURES_ADDRESS = "bearer-failures-address"
LOGIN_FAILURES_USERNAME = "login-failures-username"
LOGIN_FAILURES_ADDRESS = "login-failures-address"
TOKENS = "tokens"
INTROSPECTIONS = "introspections"
REGISTRATIONS_ADDRESS = "registrations-address"

# The audit fields naming each budget's key, in the order of the key's parts.
_KEY_FIELDS: dict[str, tuple[Literal["ip", "client_id", "username"], ...]] = {
    FAILURES_ADDRESS: ("ip",),
    FAILURES_CLIENT_ADDRESS: ("ip", "client_id"),
    FAILURES_CLIENT: ("client_id",),
    BEARER_FAILURES_ADDRESS: ("ip",),
    LOGIN_FAILURES_USERNAME: ("username",),
    LOGIN_FAILURES_ADDRESS: ("ip",),
    TOKENS: ("client_id",),
    INTROSPECTIONS: ("client_id",),
    REGISTRATIONS_ADDRESS: ("ip",),
}
_MAX_TRACKED = 100_000
_PRUNE_EVERY = 10.0  # seconds between sweeps of expired failure keys and lockouts


def parse_limit(value: str) -> RateLimitItem:
    """``"20/minute"`` → a rate limit item; raises ``ValueError`` with a clear message."""
    try:
        return parse(value)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a rate limit such as '20/minute': {exc}") from None


@dataclass(frozen=True, slots=True)
class RateLimitPolicy:
    auth_failures_per_client_address: str = "20/minute"
    auth_failures_per_client: str = "1000/minute"
    auth_failures_per_address: str = "100/minute"
    bearer_failures_per_address: str = "100/minute"
    tokens_per_client: str = "1200000/minute"
    introspections_per_client: str = "1200000/minute"
    login_failures_per_username: str = "10/minute"
    login_failures_per_address: str = "100/minute"
    registrations_per_address: str = "20/hour"


class RateLimiter:
    def __init__(
        self,
        policy: RateLimitPolicy,
        *,
        redis_url: str | None = None,
        key_prefix: str = "oauth-server",
        audit: AuditRecorder = NO_AUDIT,
        observer: Observer = NO_OBSERVER,
        clock: Clock | None = None,
    ) -> None:
        self._audit = audit
        self._observer = observer
        # The audit's once-a-minute rule reads the injected clock; the counters' windows are
        # the limits library's, on the wall clock (it takes no clock).
        self._clock = clock or SystemClock()
        self._audited: dict[tuple[str, ...], float] = {}
        # The failure keys this process has counted, and until when. A key absent here has no
        # failure this process has seen, so its budget is not looked up: a successful request
        # costs the store nothing. In memory that is exact. With Redis, failures counted by
        # other instances are enforced here from this instance's first failure for the key
        # on: at most one extra attempt per instance and window, for no Redis round trip on
        # the success path.
        self._failing: dict[tuple[str, ...], float] = {}
        self._failing_pruned = 0.0
        self._lockouts_pruned = 0.0
        self.bearer_lockouts: dict[str, float] = {}
        """Address keys whose bearer-failure budget is spent → wall-clock time it resets.
        Kept locally with either store, so that checking a bearer request never waits on
        the store; an instance learns of a budget spent elsewhere at its next failure."""
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
        self._storage = storage
        self._limiter = FixedWindowRateLimiter(storage)
        self._failures_client_address = parse_limit(policy.auth_failures_per_client_address)
        self._failures_client = parse_limit(policy.auth_failures_per_client)
        self._failures_address = parse_limit(policy.auth_failures_per_address)
        self._bearer_failures = parse_limit(policy.bearer_failures_per_address)
        self._tokens = parse_limit(policy.tokens_per_client)
        self._introspections = parse_limit(policy.introspections_per_client)
        self._login_username = parse_limit(policy.login_failures_per_username)
        self._login_address = parse_limit(policy.login_failures_per_address)
        self._registrations = parse_limit(policy.registrations_per_address)
        self._last_outage_log = 0.0

    @property
    def shared(self) -> bool:
        return isinstance(self._storage, RedisStorage)

    async def before_authentication(self, client_id: str, address: str) -> None:
        """Refuse to even check the credentials once a failure budget is spent."""
        if not self._failing:
            return  # no failure seen: nothing to look up (the common case)
        now = time.monotonic()
        if now >= self._failing_pruned + _PRUNE_EVERY:
            self._failing_pruned = now  # forget expired keys, so the common case comes back
            self._failing = {k: t for k, t in self._failing.items() if t > now}
        ip = address_key(address)
        if ip:
            await self._require(self._failures_address, FAILURES_ADDRESS, ip)
        if client_id:
            if ip:
                await self._require(
                    self._failures_client_address, FAILURES_CLIENT_ADDRESS, ip, client_id
                )
            await self._require(self._failures_client, FAILURES_CLIENT, client_id)

    async def authentication_failed(self, client_id: str, address: str) -> None:
        """Count a failure; ``client_id`` is empty when the credentials were unreadable."""
        ip = address_key(address)
        if ip:
            await self._hit(self._failures_address, FAILURES_ADDRESS, ip)
        if client_id:
            if ip:
                await self._hit(
                    self._failures_client_address, FAILURES_CLIENT_ADDRESS, ip, client_id
                )
            await self._hit(self._failures_client, FAILURES_CLIENT, client_id)

    async def before_login(self, username: str, address: str) -> None:
        """Refuse a sign-in attempt once the username's or the address's failure budget is
        spent. Unknown usernames are counted exactly like known ones, so a lockout says
        nothing about whether the account exists."""
        if not self._failing:
            return
        ip = address_key(address)
        if ip:
            await self._require(self._login_address, LOGIN_FAILURES_ADDRESS, ip)
        if username:
            await self._require(self._login_username, LOGIN_FAILURES_USERNAME, username)

    async def login_failed(self, username: str, address: str) -> None:
        """Count a failed sign-in against the username (known or not) and the address."""
        ip = address_key(address)
        if ip:
            await self._hit(self._login_address, LOGIN_FAILURES_ADDRESS, ip)
        if username:
            await self._hit(self._login_username, LOGIN_FAILURES_USERNAME, username)

    def before_bearer(self, address: str) -> None:
        """Refuse a bearer request from an address whose failure budget is spent, before its
        token is looked at. Callers skip the call while :attr:`bearer_lockouts` is empty."""
        now = time.time()
        if now >= self._lockouts_pruned + _PRUNE_EVERY:
            self._lockouts_pruned = now  # forget ended lockouts: valid tokens cost nothing again
            self.bearer_lockouts = {k: t for k, t in self.bearer_lockouts.items() if t > now}
        ip = address_key(address)
        until = self.bearer_lockouts.get(ip)
        if until is None or until <= now:
            return
        self._record_denial(self._bearer_failures, BEARER_FAILURES_ADDRESS, (ip,))
        raise TooManyRequests(
            math.ceil(until - now), "too many invalid access tokens from this address; retry later"
        )

    async def bearer_failed(self, address: str) -> None:
        """Count a refused bearer token; raises :class:`TooManyRequests` (RFC 6585 §4) when
        this failure spends the address's budget, and from then on :meth:`before_bearer` does."""
        ip = address_key(address)
        if not ip:
            return
        item = self._bearer_failures
        try:
            allowed = await self._limiter.hit(item, BEARER_FAILURES_ADDRESS, ip)
        except Exception as exc:
            self._outage(exc)
            return
        if allowed:
            return
        retry_after = await self._retry_after(item, BEARER_FAILURES_ADDRESS, ip)
        lockouts = self.bearer_lockouts
        if len(lockouts) > _MAX_TRACKED:
            now = time.time()
            self.bearer_lockouts = {k: t for k, t in lockouts.items() if t > now}
        self.bearer_lockouts[ip] = time.time() + retry_after
        self._record_denial(item, BEARER_FAILURES_ADDRESS, (ip,))
        raise TooManyRequests(
            retry_after, "too many invalid access tokens from this address; retry later"
        )

    async def token_requested(self, client_id: str) -> None:
        await self._consume(self._tokens, TOKENS, client_id)

    async def introspection_requested(self, client_id: str) -> None:
        await self._consume(self._introspections, INTROSPECTIONS, client_id)

    async def registration_requested(self, address: str) -> None:
        """Count a request to the registration endpoints; 429 once the address's budget is
        spent (successful requests count too: each may create a client)."""
        ip = address_key(address)
        if ip:
            await self._consume(self._registrations, REGISTRATIONS_ADDRESS, ip)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()

    async def reset(self) -> None:
        """Forget every counter (tests, and an operator's escape hatch)."""
        await self._storage.reset()
        self.bearer_lockouts.clear()
        self._failing.clear()

    async def _require(self, item: RateLimitItem, kind: str, *key: str) -> None:
        if self._failing.get((kind, *key), 0.0) < time.monotonic():
            return
        await self._enforce(self._limiter.test, item, kind, key)

    async def _consume(self, item: RateLimitItem, kind: str, *key: str) -> None:
        await self._enforce(self._limiter.hit, item, kind, key)

    async def _enforce(
        self,
        check: Callable[..., Awaitable[bool]],
        item: RateLimitItem,
        kind: str,
        key: tuple[str, ...],
    ) -> None:
        try:
            allowed = await check(item, kind, *key)
        except Exception as exc:
            self._outage(exc)
            return
        if not allowed:
            self._record_denial(item, kind, key)
            raise TooManyRequests(await self._retry_after(item, kind, *key))

    def _record_denial(self, item: RateLimitItem, kind: str, key: tuple[str, ...]) -> None:
        """Audit a limit being hit — once a minute per limit and key, so that a flood of
        refused requests does not become a flood of audit rows. Metrics count every one."""
        self._observer.rate_limited(kind)
        now = self._clock.now()
        seen = (kind, *key)
        last = self._audited.get(seen)
        if last is not None and now - last < 60:
            return
        if len(self._audited) > 10_000:
            self._audited.clear()
        self._audited[seen] = now
        fields: AuditFields = {"reason": kind, "limit": str(item)}
        for name, value in zip(_KEY_FIELDS[kind], key, strict=True):
            fields[name] = value[:256]
        self._audit.record("rate_limited", **fields)

    async def _hit(self, item: RateLimitItem, kind: str, *key: str) -> None:
        if len(self._failing) > _MAX_TRACKED:
            now = time.monotonic()
            self._failing = {k: t for k, t in self._failing.items() if t > now}
        self._failing[(kind, *key)] = time.monotonic() + item.get_expiry()
        try:
            await self._limiter.hit(item, kind, *key)
        except Exception as exc:
            self._outage(exc)

    async def _retry_after(self, item: RateLimitItem, kind: str, *key: str) -> int:
        try:
            stats = await self._limiter.get_window_stats(item, kind, *key)
        except Exception:
            return item.get_expiry()
        return max(1, math.ceil(stats.reset_time - time.time()))

    def _outage(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._last_outage_log > 60:
            self._last_outage_log = now
            log.error("rate-limit store unreachable, limits not enforced: %s", exc)
