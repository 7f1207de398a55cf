"""The deployment self-check: this configuration and its stored data against RFC 9700 (the
OAuth 2.0 Security BCP) and the project's own rules.

``oauth-server check [--json] [--strict]`` prints the report; ``serve`` in production runs the
same checks before it writes anything and refuses to start on a critical finding
(:func:`oauth_server.bootstrap.refuse_unsafe_production`). Every check judges the deployment
as one that faces the internet, whatever ``OAUTH_SERVER_ENV`` says: the development defaults
fail it.

Severities (:data:`~oauth_server.selfcheck.registry.Severity`): ``critical`` fails the check
(exit 1) and stops a production start; ``warning`` fails only ``--strict``; ``info`` never.

Adding a check
--------------
1. Declare each kind of finding once, with :func:`rule`: a dotted id, the severity, the RFC
   section (``"RFC 9700 §2.1.1"``; ``"project rule"`` for ours), the setting to change and
   the usual fix, and a one-line summary for the README::

       OPEN_REGISTRATION = rule(
           "registration.open",
           "warning",
           reference="RFC 7591 §3; RFC 9700 §4.? (mem)",
           setting="OAUTH_SERVER_REGISTRATION",
           fix="set OAUTH_SERVER_REGISTRATION=initial-token",
           summary="Anyone may register a client.",
       )

2. Write an async function of the :class:`Deployment` returning findings, registered with
   :func:`check` (``needs="schema"`` when it reads stored rows: it then runs only on a
   reachable database at this version's schema, and ``deployment.db`` is the storage)::

       @check("registration", rules=[OPEN_REGISTRATION])
       async def registration(deployment: Deployment) -> list[Finding]:
           if deployment.settings.registration != "open":
               return []
           return [OPEN_REGISTRATION.finding("OAUTH_SERVER_REGISTRATION is open")]

3. Put it in a module of this package (a new one for a new area: ``registration_checks.py``)
   and import that module below, where the order of imports is the order checks run in.
4. Run ``make readme``: the README's "Self-check" table is generated from the rules
   (:func:`rules_table`; a test fails while it is stale). Add table-driven unit tests that
   make each rule fire, and not fire (``tests/unit/test_selfcheck.py``).

A check reads; it never writes, creates a file or contacts anything but the database.
"""

from __future__ import annotations

import asyncio
import os
import textwrap

from oauth_server.clock import Clock
from oauth_server.config import Settings, redact_url
from oauth_server.selfcheck import config_checks, data_checks, file_checks
from oauth_server.selfcheck.data_checks import (
    CHECK_FAILED,
    DATABASE_ABSENT,
    DATABASE_UNREACHABLE,
    MIGRATIONS_PENDING,
)
from oauth_server.selfcheck.registry import (
    CHECKS,
    RULES,
    Check,
    Deployment,
    Finding,
    Report,
    Rule,
    Severity,
    check,
    rule,
)
from oauth_server.storage import Storage, open_storage
from oauth_server.storage.sql.engine import sqlite_file

__all__ = [
    "CHECKS",
    "RULES",
    "Check",
    "Deployment",
    "Finding",
    "Report",
    "Rule",
    "Severity",
    "check",
    "check_deployment",
    "format_report",
    "rule",
    "rules_table",
]

_ = (config_checks, data_checks, file_checks)  # imported for their registrations

DATABASE_CHECK = "database"
_PING_TIMEOUT = 10.0


def _absent_sqlite_file(url: str) -> str | None:
    # A missing (or empty, just created) file holds nothing; connecting would create it.
    path = sqlite_file(url)
    if path is not None and (not os.path.exists(path) or os.path.getsize(path) == 0):
        return path
    return None


async def _probe(settings: Settings, storage: Storage) -> tuple[list[Finding], bool, bool]:
    """Findings about the database itself; whether it answers; whether its schema is current."""
    where = redact_url(settings.database_url)
    try:
        await asyncio.wait_for(storage.ping(), _PING_TIMEOUT)
        current = await storage.schema_is_current()
    except Exception as exc:  # any driver's error: the finding names it
        reason = f"{type(exc).__name__}: {exc}"[:300]
        finding = DATABASE_UNREACHABLE.finding(f"cannot reach the database {where}: {reason}")
        return [finding], False, False
    if not current:
        return [MIGRATIONS_PENDING.finding(f"the schema of {where} is not current")], True, False
    return [], True, True


async def check_deployment(
    settings: Settings, *, clock: Clock, storage: Storage | None = None
) -> Report:
    """Run every registered check. With no ``storage``, one is opened (unless the SQLite file
    does not exist: it is not created) and closed again."""
    absent = _absent_sqlite_file(settings.database_url)
    own = None
    if storage is None and absent is None:
        storage = own = open_storage(settings.database_url, pool_size=2)
    try:
        if storage is None or absent is not None:
            found = [DATABASE_ABSENT.finding(f"the SQLite database {absent} does not exist yet")]
            reachable = current = False
        else:
            found, reachable, current = await _probe(settings, storage)
        deployment = Deployment(
            settings=settings,
            clock=clock,
            storage=storage if reachable else None,
            schema_current=current,
        )
        ran, skipped = [DATABASE_CHECK], []
        findings = list(found)
        for registered in CHECKS:
            if (registered.needs == "database" and not reachable) or (
                registered.needs == "schema" and not current
            ):
                skipped.append(registered.name)
                continue
            try:
                findings.extend(await registered.run(deployment))
            except Exception as exc:  # a broken check fails closed, and says which it was
                reason = f"{type(exc).__name__}: {exc}"[:300]
                findings.append(
                    CHECK_FAILED.finding(f"the check {registered.name!r} failed: {reason}")
                )
            ran.append(registered.name)
    finally:
        if own is not None:
            await own.close()
    order = {"critical": 0, "warning": 1, "info": 2}
    findings.sort(key=lambda finding: order[finding.severity])  # stable: check order within
    return Report(
        findings=tuple(findings),
        ran=tuple(ran),
        skipped=tuple(skipped),
        schema_current=current,
    )


def format_report(report: Report, *, strict: bool = False, width: int = 100) -> str:
    """The report as a table: severity, id, message, and under it the fix and the source."""
    if not report.findings:
        lines = ["no findings"]
    else:
        id_width = max(len(finding.id) for finding in report.findings)
        indent = " " * (12 + id_width)
        text_width = max(40, width - len(indent))
        lines = [f"{'SEVERITY':<8}  {'ID':<{id_width}}  MESSAGE / FIX", ""]
        for finding in report.findings:
            message = textwrap.wrap(finding.message, text_width) or [""]
            lines.append(f"{finding.severity:<8}  {finding.id:<{id_width}}  {message[0]}")
            lines += [indent + line for line in message[1:]]
            for label, text in (("fix:", finding.fix), ("see:", finding.reference)):
                lines += textwrap.wrap(
                    f"{label} {text}",
                    len(indent) + text_width,
                    initial_indent=indent,
                    subsequent_indent=indent + "     ",
                    break_on_hyphens=False,
                )
            lines.append("")
    counts = ", ".join(
        f"{report.count(severity)} {severity}" for severity in ("critical", "warning", "info")
    )
    verdict = "FAIL" if report.failed(strict=strict) else "ok"
    skipped = f"; skipped (no database): {', '.join(report.skipped)}" if report.skipped else ""
    lines.append(f"{verdict}: {counts}{' (strict)' if strict else ''}{skipped}")
    return "\n".join(lines)


def rules_table() -> str:
    """Every rule as a Markdown table (the README's "Self-check" section)."""
    rows = ["| Id | Severity | Finds | Reference |", "|---|---|---|---|"]
    for declared in RULES.values():
        rows.append(
            f"| `{declared.id}` | {declared.severity} | {declared.summary} | {declared.reference} |"
        )
    return "\n".join(rows)
