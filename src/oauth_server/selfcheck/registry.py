"""The self-check's machinery: rules, findings, the registry of checks, the report.

Framework-free: a check is an async function of a :class:`Deployment` that returns findings;
nothing here knows about the CLI or HTTP. See the package docstring for how to add a check.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from oauth_server.clock import Clock
from oauth_server.config import Settings
from oauth_server.storage import Storage

__all__ = [
    "CHECKS",
    "RULES",
    "Check",
    "Deployment",
    "Finding",
    "Needs",
    "Report",
    "Rule",
    "Severity",
    "check",
    "rule",
]

Severity = Literal["critical", "warning", "info"]
"""``critical``: unsafe, production refuses to serve; ``warning``: weaker than it should be
(fails ``oauth-server check --strict``); ``info``: worth knowing, never fails."""
SEVERITIES: tuple[Severity, ...] = ("critical", "warning", "info")

Needs = Literal["settings", "database", "schema"]
"""What a check reads: the settings alone; a reachable database; a database whose schema is
at this version's head (its rows have the shape the check expects)."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing the self-check found."""

    id: str
    severity: Severity
    message: str
    """What is wrong, with the values that make it so (never a secret)."""
    setting: str
    """The setting to change (``OAUTH_SERVER_…``), or the command that fixes stored data."""
    fix: str
    """What to do, in a sentence."""
    reference: str
    """Where the rule comes from: ``RFC 9700 §2.1.1``, or ``project rule``."""

    def as_json(self) -> dict[str, str]:
        return {
            "id": self.id,
            "severity": self.severity,
            "message": self.message,
            "setting": self.setting,
            "fix": self.fix,
            "reference": self.reference,
        }


@dataclass(frozen=True, slots=True)
class Rule:
    """A kind of finding: its id, severity, reference and usual remedy, declared once (the
    README's self-check table lists every rule, and a test holds it to that)."""

    id: str
    severity: Severity
    reference: str
    setting: str
    fix: str
    summary: str
    """One line for the README: what the rule looks for."""

    def finding(
        self, message: str, *, fix: str | None = None, setting: str | None = None
    ) -> Finding:
        """A finding of this rule; ``fix`` and ``setting`` replace the rule's usual ones."""
        return Finding(
            id=self.id,
            severity=self.severity,
            message=message,
            setting=self.setting if setting is None else setting,
            fix=self.fix if fix is None else fix,
            reference=self.reference,
        )


RULES: dict[str, Rule] = {}
"""Every declared rule by id, in declaration order."""


def rule(
    id: str, severity: Severity, *, reference: str, setting: str, fix: str, summary: str
) -> Rule:
    """Declare (and register) a rule; ids are unique, dotted, lower case (``issuer.https``)."""
    if id in RULES:
        raise ValueError(f"self-check rule {id!r} is declared twice")
    declared = Rule(id, severity, reference, setting, fix, summary)
    RULES[id] = declared
    return declared


@dataclass(frozen=True, slots=True)
class Deployment:
    """What a check looks at. ``storage`` is ``None`` while the database is unreachable or
    does not exist yet; checks declared with ``needs="database"`` or ``"schema"`` then do not
    run (and are listed as skipped)."""

    settings: Settings
    clock: Clock
    storage: Storage | None = None
    schema_current: bool = False

    @property
    def db(self) -> Storage:
        """The storage, for a check that declared it needs one (the runner guarantees it)."""
        if self.storage is None:  # pragma: no cover - the runner never calls such a check
            raise RuntimeError("this check needs the database")
        return self.storage


CheckFunction = Callable[[Deployment], Awaitable[Iterable[Finding]]]


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    needs: Needs
    run: CheckFunction
    rules: tuple[Rule, ...]
    """The rules it can report (documentation; a finding of another rule is a bug)."""


CHECKS: list[Check] = []
"""The registered checks, in the order they run."""


def check(
    name: str, *, needs: Needs = "settings", rules: Iterable[Rule]
) -> Callable[[CheckFunction], CheckFunction]:
    """Register an async check function under ``name``; ``rules`` are those it may report."""

    def register(function: CheckFunction) -> CheckFunction:
        if any(existing.name == name for existing in CHECKS):
            raise ValueError(f"self-check {name!r} is registered twice")
        CHECKS.append(Check(name, needs, function, tuple(rules)))
        return function

    return register


@dataclass(frozen=True, slots=True)
class Report:
    """The outcome of one self-check run."""

    findings: tuple[Finding, ...]
    ran: tuple[str, ...]
    skipped: tuple[str, ...] = field(default=())
    """Checks that did not run (their database was unreachable, absent or not migrated)."""
    schema_current: bool = False

    def count(self, severity: Severity) -> int:
        return sum(1 for finding in self.findings if finding.severity == severity)

    @property
    def critical(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "critical")

    def failed(self, *, strict: bool = False) -> bool:
        """Whether the deployment fails: any critical finding; with ``strict``, any warning."""
        failing = {"critical", "warning"} if strict else {"critical"}
        return any(finding.severity in failing for finding in self.findings)

    def as_json(self, *, strict: bool = False) -> dict[str, Any]:
        return {
            "ok": not self.failed(strict=strict),
            "strict": strict,
            "counts": {severity: self.count(severity) for severity in SEVERITIES},
            "findings": [finding.as_json() for finding in self.findings],
            "checks_run": list(self.ran),
            "checks_skipped": list(self.skipped),
        }
