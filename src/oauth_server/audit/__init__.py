"""The audit trail: security events, hash-chained per process, written off the request path.

* :mod:`~oauth_server.audit.events` — the event kinds and fields, and the ``AuditRecorder``
  protocol the core is given (a no-op by default);
* :mod:`~oauth_server.audit.chain` — sealing and verifying hash chains;
* :mod:`~oauth_server.audit.trail` — the buffered, batched writer each process runs.
"""

from __future__ import annotations

from oauth_server.audit.chain import ChainReport, verify_trail
from oauth_server.audit.events import (
    NO_AUDIT,
    ActingAudit,
    AuditFields,
    AuditKind,
    AuditRecorder,
    NullAudit,
)
from oauth_server.audit.trail import AuditTrail

__all__ = [
    "NO_AUDIT",
    "ActingAudit",
    "AuditFields",
    "AuditKind",
    "AuditRecorder",
    "AuditTrail",
    "ChainReport",
    "NullAudit",
    "verify_trail",
]
