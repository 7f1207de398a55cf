"""The process's audit trail: record in memory now, write in batches from the background.

``record`` is a list append — no I/O, no hashing, no lock — so that the request path does not
wait for the audit trail. A task seals the buffered events into this process's hash chain
(:mod:`oauth_server.audit.chain`) and writes them every ``flush_interval`` seconds, in
batches of at most ``batch_size`` rows, one transaction each; ``close`` writes what is left.

Consequences, on purpose:

* **A crash loses the events of its last flush interval** (one second by default). They were
  at the tail of the chain and never written, so the stored chain is still a complete prefix
  and verifies. Events are not on any response's acknowledgement path.
* **A database outage does not lose events until the buffer is full**: failed batches are
  retried in order (a batch whose commit was in doubt is written again; stored rows are
  skipped). Beyond ``max_buffered`` events new ones are counted, not kept, and the count is
  recorded as an ``audit_events_dropped`` event, so the gap is itself in the trail.
* **Each process writes only its own chain** (a random id chosen at start), so instances never
  contend on a sequence or a lock.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from typing import Unpack

from oauth_server.audit.chain import GENESIS, seal
from oauth_server.audit.events import AuditFields, AuditKind
from oauth_server.background import Periodic
from oauth_server.clock import Clock
from oauth_server.storage.models import AuditRecord
from oauth_server.storage.protocols import AuditRepository

__all__ = ["AuditTrail"]

log = logging.getLogger(__name__)

_Event = tuple[int, AuditKind, AuditFields]


class AuditTrail:
    """An :class:`~oauth_server.audit.events.AuditRecorder` that writes to ``repository``."""

    def __init__(
        self,
        repository: AuditRepository,
        *,
        clock: Clock,
        program: str = "server",
        flush_interval: float = 1.0,
        batch_size: int = 500,
        max_buffered: int = 100_000,
    ) -> None:
        self.chain_id = secrets.token_hex(16)
        self._repository = repository
        self._clock = clock
        self._batch_size = batch_size
        self._max_buffered = max_buffered
        self._events: list[_Event] = []
        self._backlog: list[_Event] = []
        self._sealed: list[AuditRecord] = []
        self._seq = 0
        self._head = GENESIS
        self._dropped = 0
        self._lock = asyncio.Lock()
        self._writer = Periodic(
            "audit-flush",
            self.flush,
            interval=lambda: flush_interval,
            on_error=self._flush_failed,
        )
        # The first event names who writes the chain: which program, process and machine.
        self.record("chain_started", program=program, pid=os.getpid(), host=socket.gethostname())

    def record(self, kind: AuditKind, /, **fields: Unpack[AuditFields]) -> None:
        if self.pending >= self._max_buffered:
            self._dropped += 1
            return
        self._events.append((int(self._clock.now() * 1000), kind, fields))

    @property
    def pending(self) -> int:
        """Events recorded but not yet known to be written."""
        return len(self._events) + len(self._backlog) + len(self._sealed)

    async def flush(self) -> None:
        """Write every event recorded before this call; on failure keep them, in order, for
        the next attempt.

        Events are sealed one batch at a time, just before that batch is written: sealing
        costs a few microseconds an event, and sealing a second's worth at once would stall
        the event loop (and every request in flight) for tens of milliseconds.
        """
        async with self._lock:
            # Oldest first: sealed-but-unwritten, then the backlog, then what came since.
            self._backlog += self._events
            self._events = []
            while True:
                if not self._sealed:
                    if not self._backlog and self._dropped:
                        self._backlog.append(self._dropped_event())
                    if not self._backlog:
                        return
                    chunk = self._backlog[: self._batch_size]
                    del self._backlog[: len(chunk)]
                    self._seal(chunk)
                batch = self._sealed[: self._batch_size]
                await self._repository.append(records=batch)
                del self._sealed[: len(batch)]

    def _dropped_event(self) -> _Event:
        # The events were not kept, but that they were lost is.
        count, self._dropped = self._dropped, 0
        fields: AuditFields = {"count": count, "reason": "audit buffer full"}
        return int(self._clock.now() * 1000), "audit_events_dropped", fields

    def _seal(self, events: list[_Event]) -> None:
        for at_ms, kind, fields in events:
            self._seq += 1
            record = seal(
                previous=self._head,
                chain_id=self.chain_id,
                seq=self._seq,
                at_ms=at_ms,
                kind=kind,
                fields=fields,
            )
            self._head = record.digest
            self._sealed.append(record)

    async def start(self) -> None:
        """Write in the background every ``flush_interval`` seconds."""
        self._writer.start()

    async def close(self) -> None:
        """Stop the background writer and write what is left (shutdown)."""
        await self._writer.stop()
        try:
            await self.flush()
        except Exception:
            log.error("could not write %d audit events at shutdown; they are lost", self.pending)

    def _flush_failed(self, exc: Exception) -> None:
        log.warning("writing audit events failed; %d kept for retry", self.pending, exc_info=exc)
