"""Hash chains: sealing events into records, and verifying stored chains.

Each record's digest is ``SHA-256(previous digest ‖ canonical JSON of the event)``; the first
event of a chain follows 32 zero bytes. The canonical JSON is the envelope
``{"at_ms", "chain_id", "data", "kind", "seq"}`` with sorted keys, no whitespace, UTF-8, and
only strings and integers as values, so it has one spelling. Chain id and sequence number are
inside it: a row changed, moved to another position or another chain no longer matches.

What verification can and cannot see. A changed row, a row deleted from the middle or the
start of a chain, and reordered rows are reported. Rows cut from the *end* of a chain look
exactly like events lost in a crash (see :mod:`oauth_server.audit.trail`), and someone able to
rewrite every row after a change can recompute the digests; both are caught only by comparing
a chain's head digest, which ``oauth-server audit verify`` prints, with a copy kept elsewhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

import orjson

from oauth_server.storage.models import AuditRecord
from oauth_server.storage.protocols import AuditRepository

__all__ = ["GENESIS", "ChainReport", "canonical_json", "seal", "verify_trail"]

GENESIS = bytes(32)
_MAX_TEXT = 256  # longer values (a made-up client_id, say) are cut: no unbounded rows


def canonical_json(value: Mapping[str, object]) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _digest(
    previous: bytes, *, chain_id: str, seq: int, at_ms: int, kind: str, fields: Mapping[str, object]
) -> bytes:
    envelope = {"at_ms": at_ms, "chain_id": chain_id, "data": fields, "kind": kind, "seq": seq}
    return hashlib.sha256(previous + canonical_json(envelope)).digest()


def seal(
    *,
    previous: bytes,
    chain_id: str,
    seq: int,
    at_ms: int,
    kind: str,
    fields: Mapping[str, object],
) -> AuditRecord:
    """The record of one event, chained to ``previous`` (the digest of the event before)."""
    clean = {k: v[:_MAX_TEXT] if isinstance(v, str) else v for k, v in fields.items()}
    digest = _digest(previous, chain_id=chain_id, seq=seq, at_ms=at_ms, kind=kind, fields=clean)
    data = canonical_json(clean).decode("utf-8")
    return AuditRecord(chain_id, seq, at_ms, kind, data, digest)


@dataclass
class ChainReport:
    """What verification found in one chain."""

    chain_id: str
    events: int = 0
    first_at_ms: int = 0
    last_at_ms: int = 0
    head: bytes = GENESIS
    """The last event's digest: keep a copy elsewhere to detect a chain cut short later."""
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class _ChainChecker:
    def __init__(self, chain_id: str) -> None:
        self.report = ChainReport(chain_id)
        self._expected_seq = 1

    def check(self, record: AuditRecord) -> None:
        report = self.report
        if report.events == 0:
            report.first_at_ms = record.at_ms
        report.events += 1
        report.last_at_ms = record.at_ms
        # Rows arrive sorted by their (unique) sequence number: a jump is a deletion, and the
        # row after it cannot be checked, its predecessor's digest being gone.
        if record.seq != self._expected_seq:
            report.problems.append(
                f"events {self._expected_seq}..{record.seq - 1} are missing (deleted)"
            )
        else:
            fields = _fields(record.data)
            if fields is None:
                report.problems.append(f"event {record.seq} has malformed data (modified)")
            elif _recompute(report.head, record, fields) != record.digest:
                report.problems.append(
                    f"event {record.seq} does not match its digest (modified or reordered)"
                )
        # Go on from the stored digest, so that one changed row is reported once, by itself.
        report.head = record.digest
        self._expected_seq = record.seq + 1


def _recompute(previous: bytes, record: AuditRecord, fields: Mapping[str, object]) -> bytes:
    return _digest(
        previous,
        chain_id=record.chain_id,
        seq=record.seq,
        at_ms=record.at_ms,
        kind=record.kind,
        fields=fields,
    )


def _fields(data: str) -> dict[str, object] | None:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


async def verify_trail(repository: AuditRepository, *, page: int = 1000) -> list[ChainReport]:
    """Recompute every chain from the stored rows, reading ``page`` rows at a time."""
    return [report async for report in _verify(repository, page)]


async def _verify(repository: AuditRepository, page: int) -> AsyncIterator[ChainReport]:
    checker: _ChainChecker | None = None
    after: tuple[str, int] | None = None
    while True:
        records = await repository.scan(after=after, limit=page)
        for record in records:
            if checker is None or checker.report.chain_id != record.chain_id:
                if checker is not None:
                    yield checker.report
                checker = _ChainChecker(record.chain_id)
            checker.check(record)
        if len(records) < page:
            break
        after = (records[-1].chain_id, records[-1].seq)
    if checker is not None:
        yield checker.report
