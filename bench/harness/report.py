"""Aggregating measurements and writing the Markdown table, the raw JSON and the bar chart."""

import json
import statistics
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from matplotlib.figure import Figure

from . import REPO_DIR
from .dataset import DatasetSize, LoadReport
from .loads import GARBAGE_BASE, Scenario
from .profiles import profile_path
from .targets import Role, Target
from .wrk import WrkResult


@dataclass(frozen=True)
class RunSettings:
    duration_s: int
    warmup_s: int
    connections: int
    threads: int
    rounds: int
    quick: bool


@dataclass(frozen=True)
class Measurement:
    round: int
    scenario: Scenario
    target: str
    result: WrkResult
    peak_rss_mb: float
    logins_per_s: float | None = None  # what ran beside it (the logins scenario)


@dataclass(frozen=True)
class Row:
    """One scenario on one target: medians over the rounds, error counts summed, RSS peak."""

    scenario: Scenario
    target: Target
    rps: float
    p50_ms: float
    p99_ms: float
    non2xx: int
    throttled: int
    socket_errors: int
    peak_rss_mb: float
    rounds: int
    logins_per_s: float | None = None

    @property
    def failed(self) -> bool:
        return bool(self.non2xx or self.socket_errors)


def aggregate(measurements: Sequence[Measurement], targets: Sequence[Target]) -> list[Row]:
    rows = []
    for scenario in Scenario:
        for target in targets:
            runs = [m for m in measurements if m.scenario == scenario and m.target == target.key]
            if not runs:
                continue
            results = [m.result for m in runs]
            rows.append(
                Row(
                    scenario=scenario,
                    target=target,
                    rps=statistics.median(r.rps for r in results),
                    p50_ms=statistics.median(r.p50_ms for r in results),
                    p99_ms=statistics.median(r.p99_ms for r in results),
                    non2xx=sum(r.non2xx for r in results),
                    throttled=sum(r.throttled for r in results),
                    socket_errors=sum(r.socket_errors for r in results),
                    peak_rss_mb=max(m.peak_rss_mb for m in runs),
                    rounds=len(runs),
                    logins_per_s=_median_or_none([m.logins_per_s for m in runs]),
                )
            )
    return rows


def _median_or_none(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


LOGINS_P99_TARGET = 2.0  # token p99 with logins beside it, against without


def _logins_section(rows: Sequence[Row]) -> list[str]:
    with_logins = [r for r in rows if r.scenario is Scenario.CC_JWT_LOGINS]
    if not with_logins:
        return []
    alone = {r.target.key: r for r in rows if r.scenario is Scenario.CC_JWT_POST}
    lines = [
        "",
        "**Password logins beside token issuance** (20 browsers logging in with argon2id at the"
        " configured cost while wrk asks for client_credentials JWTs; target: the token"
        f" endpoint's p99 at most {LOGINS_P99_TARGET:.0f}x its p99 without logins):",
        "",
        "| Config | logins/s | tokens/s alone | tokens/s beside | p99 ms alone | p99 ms beside"
        " | p99 beside / alone | target |",
        "|---|--:|--:|--:|--:|--:|--:|---|",
    ]
    for row in with_logins:
        base = alone.get(row.target.key)
        logins = f"{row.logins_per_s:,.1f}" if row.logins_per_s is not None else "?"
        if base is None:
            lines.append(f"| {row.target.config} | {logins} | - | {row.rps:,.0f} | - |"
                         f" {row.p99_ms:.2f} | - | - |")  # fmt: skip
            continue
        ratio = row.p99_ms / base.p99_ms if base.p99_ms else float("inf")
        verdict = "met" if ratio <= LOGINS_P99_TARGET and not row.failed else "**not met**"
        lines.append(
            f"| {row.target.config} | {logins} | {base.rps:,.0f} | {row.rps:,.0f}"
            f" | {base.p99_ms:.2f} | {row.p99_ms:.2f} | {ratio:.2f}x | {verdict} |"
        )
    return lines


WORKER_SCALING_TARGET = 1.6  # 2 workers against 1, same database
LOADED_TOLERANCE = 0.10  # loaded against empty database, same workers
GARBAGE_TARGET = 0.80  # a garbage scenario against its known-token one, same target


def _ratio(row: Row, base: Row | None) -> str:
    if base is None or row.failed or base.failed:
        return "-"
    return f"{row.rps / base.rps:.2f}x"


@dataclass(frozen=True)
class Pair:
    """The same scenario on two of our targets that differ in one respect."""

    scenario: Scenario
    base: Row
    other: Row

    @property
    def ratio(self) -> float | None:
        if self.base.failed or self.other.failed:
            return None
        return self.other.rps / self.base.rps


# What a target is compared on (None: not at all), and whether it is the base (False) or the
# other side (True) of the comparison.
Side = tuple[Hashable | None, bool]


def _pairs(rows: Sequence[Row], side: Callable[[Target], Side]) -> list[Pair]:
    """Rows of the same scenario whose targets have the same comparison key, base and other."""
    found: dict[tuple[Scenario, Hashable], dict[bool, Row]] = {}
    for row in rows:
        key, flag = side(row.target)
        if key is not None:
            found.setdefault((row.scenario, key), {})[flag] = row
    return [
        Pair(scenario, both[False], both[True])
        for (scenario, _), both in found.items()
        if len(both) == 2
    ]


_NO_DATABASE = "- (bare ASGI)"


def _worker_side(target: Target) -> Side:
    if target.loaded or target.workers not in (1, 2):
        return None, False
    if target.database is not None:
        return target.database.backend, target.workers == 2
    if target.role is Role.CEILING:
        return _NO_DATABASE, target.workers == 2
    return None, False


def _loaded_side(target: Target) -> Side:
    if target.database is None:
        return None, False
    return (target.database.backend, target.workers), target.loaded


def _verdict(pair: Pair, minimum: float) -> str:
    """Met or not; where not, the profile that says where the time goes (or how to take it)."""
    ratio = pair.ratio
    if ratio is None:
        return "? (requests failed)"
    if pair.base.target.role is Role.CEILING:
        return "(what this machine allows)"
    if ratio >= minimum:
        return "met"
    key = pair.other.target.key
    path = profile_path(pair.scenario, key)
    if path.exists():
        return f"**not met**: `{path.relative_to(REPO_DIR)}`"
    return f"**not met**: `bench/profile.py {pair.scenario} --targets {key}`"


def _worker_section(rows: Sequence[Row]) -> list[str]:
    found = _pairs(rows, _worker_side)
    if not found:
        return []
    lines = [
        "",
        f"**2 workers against 1** (target: at least {WORKER_SCALING_TARGET}x, same database;"
        " the bare-ASGI row shows what a second process gains at all on this machine, where"
        " wrk shares the cores):",
        "",
        "| Scenario | Database | 1 worker req/s | 2 workers req/s | 2 workers / 1 | target |",
        "|---|---|--:|--:|--:|---|",
    ]
    for pair in found:
        database = pair.base.target.database
        lines.append(
            f"| {pair.scenario.value} | {database.backend if database else _NO_DATABASE}"
            f" | {pair.base.rps:,.0f} | {pair.other.rps:,.0f} | {_ratio(pair.other, pair.base)}"
            f" | {_verdict(pair, WORKER_SCALING_TARGET)} |"
        )
    return lines


def _loaded_section(rows: Sequence[Row], loads: Sequence[LoadReport]) -> list[str]:
    found = _pairs(rows, _loaded_side)
    if not found:
        return []
    size = DatasetSize()
    lines = [
        "",
        f"**Loaded against empty database** ({size.clients:,} clients, {size.tokens:,} opaque"
        f" tokens, {size.revoked_jtis:,} revoked JWT ids; target: within"
        f" {LOADED_TOLERANCE:.0%} of the empty database's rate):",
        "",
        "| Scenario | Database | Workers | empty req/s | loaded req/s | loaded / empty"
        " | peak RSS MB empty / loaded | target |",
        "|---|---|--:|--:|--:|--:|--:|---|",
    ]
    for pair in found:
        target = pair.base.target
        assert target.database is not None
        lines.append(
            f"| {pair.scenario.value} | {target.database.backend} | {target.workers}"
            f" | {pair.base.rps:,.0f} | {pair.other.rps:,.0f} | {_ratio(pair.other, pair.base)}"
            f" | {pair.base.peak_rss_mb:.0f} / {pair.other.peak_rss_mb:.0f}"
            f" | {_verdict(pair, 1 - LOADED_TOLERANCE)} |"
        )
    if loads:
        lines += ["", "Data set load times (generation, bulk insert, ANALYZE):", ""]
        lines += [f"- {load.summary()}" for load in loads]
    return lines


def _garbage_section(rows: Sequence[Row]) -> list[str]:
    by_key = {(r.scenario, r.target.key): r for r in rows}
    found = [
        Pair(scenario, base, row)
        for row in rows
        if (scenario := row.scenario) in GARBAGE_BASE
        and (base := by_key.get((GARBAGE_BASE[scenario], row.target.key))) is not None
    ]
    if not found:
        return []
    lines = [
        "",
        f"**Garbage against known tokens** (issue 11 item 3; target: at least"
        f" {GARBAGE_TARGET:.0%} of the known-token rate on the same server; the old-format"
        " tokens are looked up by design, so that row has none):",
        "",
        "| Garbage scenario | Known-token scenario | Target | garbage req/s | known req/s"
        " | garbage / known | target |",
        "|---|---|---|--:|--:|--:|---|",
    ]
    for pair in found:
        verdict = (
            "- (a lookup each)"
            if pair.other.scenario is Scenario.INTROSPECT_LEGACY_UNKNOWN
            else _verdict(pair, GARBAGE_TARGET)
        )
        lines.append(
            f"| {pair.other.scenario.value} | {pair.base.scenario.value}"
            f" | {pair.other.target.key} | {pair.other.rps:,.0f} | {pair.base.rps:,.0f}"
            f" | {_ratio(pair.other, pair.base)} | {verdict} |"
        )
    return lines


def _errors(row: Row) -> str:
    return f"{row.non2xx} ({row.throttled} x 429)" if row.throttled else str(row.non2xx)


STARTUP_TARGET_S = 1.5  # oauth-server serve to its first 200, SQLite (issue 11)


def _startup_section(rows: Sequence[Row], startups: Mapping[str, float]) -> list[str]:
    """Start-up of each server measured (process start to the first 2xx of its ready path;
    ours on a new database, so migrations and the demo data included) and its peak RSS."""
    targets = {row.target.key: row.target for row in rows}
    measured = [(key, seconds) for key, seconds in startups.items() if key in targets]
    if not measured:
        return []
    peak = {key: max(r.peak_rss_mb for r in rows if r.target.key == key) for key, _ in measured}
    lines = [
        "",
        "**Start-up and footprint** (process start to the first 2xx of its ready path — ours"
        " on a new database: migrations and demo data included; target for ours on SQLite:"
        f" at most {STARTUP_TARGET_S} s; peak RSS under load over every scenario, all its"
        " processes together):",
        "",
        "| Server | Config | start-up s | peak RSS MB | per worker MB |",
        "|---|---|--:|--:|--:|",
    ]
    for key, seconds in measured:
        target = targets[key]
        lines.append(
            f"| {target.server} | {target.config} | {seconds:.2f} | {peak[key]:.0f}"
            f" | {peak[key] / max(target.workers, 1):.0f} |"
        )
    return lines


def render_markdown(
    rows: Sequence[Row],
    machine: dict[str, str],
    settings: RunSettings,
    skipped: Sequence[str],
    loads: Sequence[LoadReport] = (),
    startups: Mapping[str, float] | None = None,
) -> str:
    """The report without a title: it goes under one in results/*.md and in the README."""
    reference = {r.scenario: r for r in rows if r.target.role is Role.REFERENCE}
    ceiling = next(
        (r for r in rows if r.target.role is Role.CEILING and r.target.workers == 1), None
    )
    lines = [
        f"- Date: {machine['date']}" + (" (quick smoke run)" if settings.quick else ""),
        f"- Machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory']},"
        f" Linux {machine['kernel']}",
        f"- Python {machine['python']}; PostgreSQL {machine['postgresql']};"
        f" Node.js {machine['node']}; oidc-provider {machine['oidc-provider']}; {machine['wrk']}",
        f"- Method: wrk, {settings.threads} threads, {settings.connections} connections over"
        f" loopback, on the same machine as the servers; each measurement {settings.duration_s} s"
        f" after a {settings.warmup_s} s warm-up; {settings.rounds} round(s) alternating the"
        " servers; req/s and latencies are medians over the rounds, error counts are summed,"
        " peak RSS is the largest sum of RSS over the server's process tree.",
    ]
    # The ratio columns only where the run measured what they divide by.
    ratios = [
        *(["vs node-oidc-provider"] if reference else []),
        *(["vs ceiling"] if ceiling else []),
    ]
    lines += [
        "",
        "| Scenario | Server | Config | req/s | p50 ms | p99 ms | non-2xx | socket errors"
        f" | peak RSS MB |{''.join(f' {name} |' for name in ratios)}",
        "|---|---|---|--:|--:|--:|--:|--:|--:|" + "--:|" * len(ratios),
    ]
    for row in rows:
        cells = [
            row.scenario.description,
            row.target.server,
            row.target.config,
            f"{row.rps:,.0f}{' (!)' if row.failed else ''}",
            f"{row.p50_ms:.2f}",
            f"{row.p99_ms:.2f}",
            _errors(row),
            str(row.socket_errors),
            f"{row.peak_rss_mb:.0f}",
            *([_ratio(row, reference.get(row.scenario))] if reference else []),
            *([_ratio(row, ceiling)] if ceiling else []),
        ]
        lines.append(f"| {' | '.join(cells)} |")
    if any(row.failed for row in rows):
        lines += [
            "",
            "(!) some requests failed: that rate is not comparable, so no ratio is given.",
        ]
    lines += _worker_section(rows)
    lines += _loaded_section(rows, loads)
    lines += _logins_section(rows)
    lines += _startup_section(rows, startups or {})
    lines += _garbage_section(rows)
    if skipped:
        lines += ["", "Not measured:", "", *(f"- {reason}" for reason in skipped)]
    return "\n".join(lines) + "\n"


def update_readme(readme: Path, block: str, body: str) -> bool:
    """Replace what stands between `<!-- {block} -->` and `<!-- /{block} -->` in the README;
    False when the markers are not there."""
    text = readme.read_text()
    start, end = f"<!-- {block} -->\n", f"<!-- /{block} -->"
    head, found, rest = text.partition(start)
    if not found or end not in rest:
        return False
    readme.write_text(head + start + body + rest[rest.index(end) :])
    return True


def raw_json(
    measurements: Sequence[Measurement],
    rows: Sequence[Row],
    machine: dict[str, str],
    settings: RunSettings,
    skipped: Sequence[str],
    loads: Sequence[LoadReport] = (),
) -> str:
    document = {
        "machine": machine,
        "settings": asdict(settings),
        "loads": [
            {"database": load.database.backend, "rows": load.rows, "seconds": load.seconds}
            for load in loads
        ],
        "measurements": [
            {
                "round": m.round,
                "scenario": m.scenario.value,
                "target": m.target,
                **asdict(m.result),
                "peak_rss_mb": m.peak_rss_mb,
            }
            for m in measurements
        ],
        "summary": [
            {
                "scenario": r.scenario.value,
                "target": r.target.key,
                "server": r.target.server,
                "config": r.target.config,
                "rps": r.rps,
                "p50_ms": r.p50_ms,
                "p99_ms": r.p99_ms,
                "non2xx": r.non2xx,
                "throttled": r.throttled,
                "socket_errors": r.socket_errors,
                "peak_rss_mb": r.peak_rss_mb,
                "rounds": r.rounds,
            }
            for r in rows
        ],
        "skipped": list(skipped),
    }
    return json.dumps(document, indent=2) + "\n"


_COLOURS = {Role.REFERENCE: "#8c8c8c", Role.CANDIDATE: "#3572a5", Role.CEILING: "#e0a040"}
_LOADED_COLOUR = "#8db3d9"  # our server on a loaded database


def write_chart(rows: Sequence[Row], path: Path, title: str) -> None:
    """A horizontal bar per row, grouped by scenario (matplotlib's Agg canvas, no pyplot)."""
    positions: list[float] = []
    labels: list[str] = []
    y = 0.0
    previous: Scenario | None = None
    for row in rows:
        if previous is not None and row.scenario != previous:
            y += 0.6  # a gap between scenarios
        positions.append(y)
        labels.append(f"{row.scenario.value}: {row.target.server} ({row.target.config})")
        previous = row.scenario
        y += 1.0

    figure = Figure(figsize=(11, 1.2 + 0.38 * y))
    axes = figure.subplots()
    bars = axes.barh(
        positions,
        [r.rps for r in rows],
        color=[_LOADED_COLOUR if r.target.loaded else _COLOURS[r.target.role] for r in rows],
        hatch=["//" if r.failed else "" for r in rows],
    )
    values = [f"{r.rps:,.0f}{' (failed)' if r.failed else ''}" for r in rows]
    axes.bar_label(bars, labels=values, padding=3, fontsize=8)
    axes.set_yticks(positions, labels, fontsize=8)
    axes.invert_yaxis()
    axes.set_xlabel("requests per second (median over rounds)")
    axes.set_title(title, fontsize=10)
    axes.margins(x=0.15)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
