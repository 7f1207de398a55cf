"""Aggregating measurements and writing the Markdown table, the raw JSON and the bar chart."""

import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from matplotlib.figure import Figure

from .loads import Scenario
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


@dataclass(frozen=True)
class Row:
    """One scenario on one target: medians over the rounds, error counts summed, RSS peak."""

    scenario: Scenario
    target: Target
    rps: float
    p50_ms: float
    p99_ms: float
    non2xx: int
    socket_errors: int
    peak_rss_mb: float
    rounds: int

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
                    socket_errors=sum(r.socket_errors for r in results),
                    peak_rss_mb=max(m.peak_rss_mb for m in runs),
                    rounds=len(runs),
                )
            )
    return rows


def _ratio(row: Row, base: Row | None) -> str:
    if base is None or row.failed or base.failed:
        return "-"
    return f"{row.rps / base.rps:.2f}x"


def render_markdown(
    rows: Sequence[Row],
    machine: dict[str, str],
    settings: RunSettings,
    skipped: Sequence[str],
) -> str:
    reference = {r.scenario: r for r in rows if r.target.role is Role.REFERENCE}
    ceiling = next((r for r in rows if r.target.role is Role.CEILING), None)
    lines = [
        "# PythonOauthServer vs node-oidc-provider"
        + (" (quick smoke run)" if settings.quick else ""),
        "",
        f"- Date: {machine['date']}",
        f"- Machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory']},"
        f" Linux {machine['kernel']}",
        f"- Python {machine['python']}; Node.js {machine['node']};"
        f" oidc-provider {machine['oidc-provider']}; {machine['wrk']}",
        f"- Method: wrk, {settings.threads} threads, {settings.connections} connections over"
        f" loopback, on the same machine as the servers; each measurement {settings.duration_s} s"
        f" after a {settings.warmup_s} s warm-up; {settings.rounds} round(s) alternating the"
        " servers; req/s and latencies are medians over the rounds, error counts are summed,"
        " peak RSS is the largest sum of RSS over the server's process tree.",
        "",
        "| Scenario | Server | Config | req/s | p50 ms | p99 ms | non-2xx | socket errors"
        " | peak RSS MB | vs node-oidc-provider | vs ceiling |",
        "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in rows:
        lines.append(
            f"| {row.scenario.description} | {row.target.server} | {row.target.config}"
            f" | {row.rps:,.0f}{' (!)' if row.failed else ''}"
            f" | {row.p50_ms:.2f} | {row.p99_ms:.2f} | {row.non2xx}"
            f" | {row.socket_errors} | {row.peak_rss_mb:.0f}"
            f" | {_ratio(row, reference.get(row.scenario))} | {_ratio(row, ceiling)} |"
        )
    if any(row.failed for row in rows):
        lines += [
            "",
            "(!) some requests failed: that rate is not comparable, so no ratio is given.",
        ]
    if skipped:
        lines += ["", "Not measured:", *(f"- {reason}" for reason in skipped)]
    return "\n".join(lines) + "\n"


def raw_json(
    measurements: Sequence[Measurement],
    rows: Sequence[Row],
    machine: dict[str, str],
    settings: RunSettings,
    skipped: Sequence[str],
) -> str:
    document = {
        "machine": machine,
        "settings": asdict(settings),
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
        color=[_COLOURS[r.target.role] for r in rows],
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
