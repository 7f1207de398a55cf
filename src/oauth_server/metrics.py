"""Prometheus metrics: the :class:`~oauth_server.observer.Observer` the server's core counts
through, the request latencies the web layer reports, and the ``/metrics`` exposition.

Several worker processes (``oauth-server serve --workers N``) are one server to Prometheus:
``serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a private directory before the workers
start, prometheus-client then keeps every value in a memory-mapped file per process, and a
scrape answered by any worker sums the files of all of them (prometheus-client's multiprocess
mode). Without that variable (tests, one process under ``uvicorn --factory``) the values live
in this object's own registry.

Cost on the request path. A memory-mapped increment costs about a microsecond, a histogram
observation about two — together some 5 % of a token request. So the request path only adds
to plain dictionaries here (a tenth of that), and :meth:`PrometheusMetrics.flush` moves the
sums into prometheus-client every ``flush_interval`` seconds, before this process answers a
scrape, and at shutdown. What another worker counted reaches a scrape within one interval;
what the scraped worker counted, at once.

Label values are bounded, whatever requests say: routes are the templates the router declares
(``/api/restaurants/{id}``, never the raw path; unknown paths are one ``unmatched`` route),
client ids only of clients that authenticated — a client spraying random ids is counted under
``_unauthenticated`` — and at most :data:`MAX_CLIENT_LABELS` of them (then ``_other``);
errors, grant types and limit names are the server's own constants.
"""

from __future__ import annotations

import bisect
import glob
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import values as prometheus_values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from oauth_server.background import Periodic
from oauth_server.observer import AuthorizationOutcome

__all__ = [
    "CONTENT_TYPE",
    "LATENCY_BUCKETS",
    "MAX_CLIENT_LABELS",
    "OTHER_CLIENT",
    "UNAUTHENTICATED",
    "Gauges",
    "PrometheusMetrics",
    "multiprocess_enabled",
]

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
MAX_CLIENT_LABELS = 1000
"""Distinct client ids one process labels series with; later ones share ``_other``."""
UNAUTHENTICATED = "_unauthenticated"
OTHER_CLIENT = "_other"
_LIVE_GAUGE_FILE = re.compile(r"gauge_live\w+?_(\d+)\.db$")


def multiprocess_enabled() -> bool:
    """Whether prometheus-client keeps values in shared files (``PROMETHEUS_MULTIPROC_DIR``
    was set when it was first imported)."""
    return prometheus_values.ValueClass is not prometheus_values.MutexValue


@dataclass(frozen=True, slots=True)
class Gauges:
    """What the gauges read at each flush: this process's database pool, and the signing
    key schedule (the same in every process: it is in the database)."""

    pool_usage: Callable[[], tuple[int, int]]
    """Connections checked out, and the pool's size."""
    key_states: Callable[[], list[str]]
    """The state of each stored key (``active``, ``pending``, ``retired``, …)."""
    next_rotation: Callable[[], float | None]
    """When the next key takes over signing, ``None`` when nothing is scheduled."""
    now: Callable[[], float]


class PrometheusMetrics:
    """The server's metrics (an :class:`~oauth_server.observer.Observer`)."""

    def __init__(self, *, flush_interval: float = 1.0) -> None:
        self._multiprocess = multiprocess_enabled()
        # Values go to the shared files in multiprocess mode whichever registry holds the
        # metrics; a private one keeps two apps in one process (tests) apart.
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._tokens_issued = Counter(
            "oauth_server_tokens_issued",
            "Token responses (RFC 6749 §5.1) by grant type and client.",
            ["grant_type", "client_id"],
            registry=r,
        )
        self._token_errors = Counter(
            "oauth_server_token_errors",
            "Token endpoint error responses (RFC 6749 §5.2) by error code and client "
            f"({UNAUTHENTICATED} before the client authenticated).",
            ["error", "client_id"],
            registry=r,
        )
        self._authorizations = Counter(
            "oauth_server_authorizations",
            "Browser sign-in outcomes: approved (a code issued), denied (consent refused), "
            "login_failed (wrong username or password).",
            ["outcome"],
            registry=r,
        )
        self._refresh_rotations = Counter(
            "oauth_server_refresh_rotations", "Refresh tokens rotated.", registry=r
        )
        self._refresh_reuses = Counter(
            "oauth_server_refresh_reuse_detections",
            "Rotated refresh tokens presented again (the family revoked, RFC 9700 §4.14.2).",
            registry=r,
        )
        self._code_replays = Counter(
            "oauth_server_code_replays",
            "Redeemed authorization codes presented again (tokens revoked, RFC 6749 §4.1.2).",
            registry=r,
        )
        self._rate_limited = Counter(
            "oauth_server_rate_limited",
            "Requests refused by a rate limit, by the limit's name.",
            ["limit"],
            registry=r,
        )
        self._introspections = Counter(
            "oauth_server_introspections",
            "Authorized introspections (RFC 7662) by result.",
            ["result"],
            registry=r,
        )
        self._latency = Histogram(
            "oauth_server_request_duration_seconds",
            "Time to answer a request, by route template, method and status.",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._pool_in_use = Gauge(
            "oauth_server_db_pool_connections_in_use",
            "Database connections checked out (all processes together).",
            registry=r,
            multiprocess_mode="livesum",
        )
        self._pool_size = Gauge(
            "oauth_server_db_pool_size",
            "Database connections the pools may hold (all processes together).",
            registry=r,
            multiprocess_mode="livesum",
        )
        self._signing_keys = Gauge(
            "oauth_server_signing_keys",
            "Stored signing keys by state (active: the one signing now).",
            ["state"],
            registry=r,
            multiprocess_mode="livemostrecent",
        )
        self._next_rotation = Gauge(
            "oauth_server_signing_key_next_rotation_seconds",
            "Seconds until the next signing key takes over (-1: none scheduled).",
            registry=r,
            multiprocess_mode="livemostrecent",
        )
        # The request path adds here; flush() moves the sums into the metrics above.
        self._counts: dict[tuple[Counter, tuple[str, ...]], int] = {}
        self._issued: dict[tuple[str, str], int] = {}
        self._latencies: dict[tuple[str, str, int], list[float]] = {}
        self._clients: set[str] = set()
        self._gauges: Gauges | None = None
        self._key_state_labels: set[str] = set()
        self._flusher = Periodic(
            "metrics-flush",
            self._flush_async,
            interval=lambda: flush_interval,
            on_error=lambda exc: log.warning("flushing metrics failed", exc_info=exc),
        )

    # --- Observer (the core) ----------------------------------------------------------------

    def _add(self, counter: Counter, labels: tuple[str, ...]) -> None:
        key = (counter, labels)
        self._counts[key] = self._counts.get(key, 0) + 1

    def _client(self, client_id: str | None) -> str:
        if client_id is None:
            return UNAUTHENTICATED
        clients = self._clients
        if client_id in clients:
            return client_id
        if len(clients) >= MAX_CLIENT_LABELS:
            return OTHER_CLIENT
        clients.add(client_id)
        return client_id

    def token_issued(self, grant_type: str, client_id: str) -> None:
        # The hot path: one dictionary update; the client's label is chosen at flush.
        key = (grant_type, client_id)
        issued = self._issued
        issued[key] = issued.get(key, 0) + 1

    def token_failed(self, error: str, client_id: str | None) -> None:
        self._add(self._token_errors, (error, self._client(client_id)))

    def refresh_rotated(self) -> None:
        self._add(self._refresh_rotations, ())

    def refresh_reused(self) -> None:
        self._add(self._refresh_reuses, ())

    def code_replayed(self) -> None:
        self._add(self._code_replays, ())

    def authorization(self, outcome: AuthorizationOutcome) -> None:
        self._add(self._authorizations, (outcome,))

    def rate_limited(self, limit: str) -> None:
        self._add(self._rate_limited, (limit,))

    def introspected(self, active: bool) -> None:
        self._add(self._introspections, ("active" if active else "inactive",))

    # --- the web layer ----------------------------------------------------------------------

    def request_served(self, route: str, method: str, status: int, seconds: float) -> None:
        """One answered request; ``route`` is a declared template or ``unmatched``, ``method``
        one the route serves (else the caller passes ``OTHER``)."""
        key = (route, method, status)
        tally = self._latencies.get(key)
        if tally is None:
            # One count per bucket (the last is +Inf), then the sum.
            tally = self._latencies[key] = [0.0] * (len(LATENCY_BUCKETS) + 2)
        tally[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        tally[-1] += seconds

    # --- lifecycle and exposition -----------------------------------------------------------

    def watch(self, gauges: Gauges) -> None:
        """Read ``gauges`` at every flush (the app does this once its services exist)."""
        self._gauges = gauges

    async def start(self) -> None:
        self._flusher.start()

    async def stop(self) -> None:
        """Stop flushing, write what is pending, and (multiprocess) retire this process's
        live gauges, so that a scrape no longer adds a pool that is gone."""
        await self._flusher.stop()
        self.flush()
        if self._multiprocess:
            directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
            if directory:
                mark_process_dead(os.getpid(), directory)  # type: ignore[no-untyped-call]

    async def _flush_async(self) -> None:
        self.flush()

    def flush(self) -> None:
        """Move the request path's sums into prometheus-client and read the gauges."""
        issued, self._issued = self._issued, {}
        for (grant_type, client_id), amount in issued.items():
            self._tokens_issued.labels(grant_type, self._client(client_id)).inc(amount)
        counts, self._counts = self._counts, {}
        for (counter, labels), amount in counts.items():
            (counter.labels(*labels) if labels else counter).inc(amount)
        latencies, self._latencies = self._latencies, {}
        for (route, method, status), tally in latencies.items():
            child = self._latency.labels(route, method, str(status))
            # prometheus-client's Histogram keeps one value per bucket (not cumulative) and
            # the sum; observe() adds to one bucket and the sum. Adding a batch goes to the
            # same values (tests/e2e/test_metrics.py counts them exactly).
            buckets: list[Any] = child._buckets
            for index, count in enumerate(tally[:-1]):
                if count:
                    buckets[index].inc(count)
            child._sum.inc(tally[-1])
        if self._gauges is not None:
            self._read_gauges(self._gauges)

    def _read_gauges(self, gauges: Gauges) -> None:
        in_use, size = gauges.pool_usage()
        self._pool_in_use.set(in_use)
        self._pool_size.set(size)
        states: dict[str, int] = dict.fromkeys(self._key_state_labels, 0)
        for state in gauges.key_states():
            states[state] = states.get(state, 0) + 1
        for state, count in states.items():
            self._signing_keys.labels(state).set(count)
        self._key_state_labels |= states.keys()
        at = gauges.next_rotation()
        self._next_rotation.set(-1 if at is None else max(0.0, at - gauges.now()))

    def render(self) -> bytes:
        """The exposition text: every process's values in multiprocess mode, else ours."""
        self.flush()
        if not self._multiprocess:
            return generate_latest(self.registry)
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
        _retire_dead_processes(directory)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
        return generate_latest(registry)


def _retire_dead_processes(directory: str) -> None:
    """Drop the live gauges of workers that died without a clean shutdown (killed): a worker
    that exits normally does this itself in :meth:`PrometheusMetrics.stop`."""
    for path in glob.glob(os.path.join(directory, "gauge_live*.db")):
        match = _LIVE_GAUGE_FILE.search(path)
        if match is None:
            continue
        pid = int(match.group(1))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
        except PermissionError:
            pass  # alive, another user's: not ours to judge
