#!/usr/bin/env python3
"""Benchmark PythonOauthServer against node-oidc-provider 9 and a bare-ASGI ceiling, with wrk.

    python bench/run.py            # full run: every target, 8 s per measurement, 2 rounds
    python bench/run.py --scale    # our server on empty and on loaded databases (1 worker)
    python bench/run.py --garbage  # tokens the server never minted against known ones
    python bench/run.py --quick    # smoke test, written under bench/results/raw/quick/
    python bench/run.py --only cc-jwt-post introspect --targets node-jwt node-opaque

Every selected server runs on its own loopback port for the whole run; the measurements alternate
between them scenario by scenario (the order reversed every other round), so drift hits all alike.
Run bench/setup.sh first (wrk, node_modules). Targets that cannot run here are skipped and listed.
"""

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from harness import BENCH_DIR, REPO_DIR
from harness.databases import DatabaseError
from harness.dataset import LoadReport
from harness.loads import Load, LoadError, Scenario
from harness.machine import machine_info
from harness.report import (
    Measurement,
    RunSettings,
    aggregate,
    raw_json,
    render_markdown,
    update_readme,
    write_chart,
)
from harness.servers import PeakRss, Server, ServerError, provisioned_server
from harness.targets import Target, default_targets
from harness.wrk import WrkError, run_wrk

RESULTS_DIR = BENCH_DIR / "results"
RAW_DIR = RESULTS_DIR / "raw"
README = REPO_DIR / "README.md"
TIME_BUDGET_S = 600
LOAD_ESTIMATE_S = 20  # loading the scale data set into one database, roughly

Step = tuple[int, Scenario, Target]

# Which scenarios each target runs, by mode; None: every scenario the target serves.
_SUBSET = (
    Scenario.CC_JWT_POST,
    Scenario.CC_OPAQUE_POST,
    Scenario.INTROSPECT,
    Scenario.RESOURCE_GET,
)
# The sign-in grants, on both databases (issue 11: >= 1.5x node on SQLite, >= 1.2x on PostgreSQL).
_SIGNIN = (Scenario.CODE, Scenario.REFRESH)
# The full run's scenarios on python-w1-sqlite: the garbage ones have their own mode (the full
# run has no time left for them).
_FULL = (
    Scenario.CC_JWT_POST,
    Scenario.CC_JWT_BASIC,
    Scenario.CC_OPAQUE_POST,
    Scenario.CC_OPAQUE_BASIC,
    Scenario.INTROSPECT,
    Scenario.INTROSPECT_UNKNOWN,
    Scenario.RESOURCE_GET,
    *_SIGNIN,
    Scenario.CC_JWT_LOGINS,
)
# Two workers: what a second process gains on issuance (the reads are served from caches).
_SCALING = (Scenario.CC_JWT_POST, Scenario.CC_OPAQUE_POST)
DEFAULT_PLAN: Mapping[str, Sequence[Scenario] | None] = {
    "node-jwt": None,
    "node-opaque": None,
    "python-w1-sqlite": _FULL,
    "python-w2-sqlite": _SUBSET,
    "python-w1-postgresql": (*_SUBSET, *_SIGNIN),
    "python-w2-postgresql": _SCALING,
    "ceiling": None,
    "ceiling-w2": None,
}
_SCALE_SCENARIOS = (*_SUBSET, Scenario.INTROSPECT_UNKNOWN, Scenario.INTROSPECT_LEGACY_UNKNOWN)
_SCALE_TARGETS = (
    "python-w1-sqlite",
    "python-w1-sqlite-loaded",
    "python-w1-postgresql",
    "python-w1-postgresql-loaded",
)
SCALE_PLAN: Mapping[str, Sequence[Scenario] | None] = dict.fromkeys(
    _SCALE_TARGETS, _SCALE_SCENARIOS
)
# Issue 11 item 3: each garbage scenario beside the known-token scenario it is compared with.
_GARBAGE_SCENARIOS = (
    Scenario.INTROSPECT,
    Scenario.INTROSPECT_UNKNOWN,
    Scenario.INTROSPECT_GARBAGE,
    Scenario.INTROSPECT_LEGACY_UNKNOWN,
    Scenario.REVOKE,
    Scenario.REVOKE_GARBAGE,
    Scenario.RESOURCE_GET_OPAQUE,
    Scenario.RESOURCE_GET_GARBAGE,
    Scenario.CC_JWT_POST,
    Scenario.REFRESH_GARBAGE,
    Scenario.CODE_GARBAGE,
)
GARBAGE_PLAN: Mapping[str, Sequence[Scenario] | None] = dict.fromkeys(
    ("python-w1-sqlite", "python-w1-postgresql"), _GARBAGE_SCENARIOS
)


@dataclass(frozen=True)
class Mode:
    name: str  # results/<name>.md and .png
    title: str
    readme_block: str  # README.md's <!-- block --> ... <!-- /block --> gets the report
    plan: Mapping[str, Sequence[Scenario] | None]


DEFAULT = Mode("latest", "PythonOauthServer vs node-oidc-provider", "bench-table", DEFAULT_PLAN)
SCALE = Mode(
    "scale", "PythonOauthServer on empty and loaded databases", "bench-scale-table", SCALE_PLAN
)
GARBAGE = Mode(
    "garbage",
    "PythonOauthServer: tokens it never minted against known ones",
    "bench-garbage-table",
    GARBAGE_PLAN,
)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=8, help="seconds per measurement")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of warm-up before each")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--rounds", type=int, default=2, help="the median over rounds is reported")
    parser.add_argument(
        "--scale",
        action="store_true",
        help="measure our server (1 worker) on empty and on loaded databases, SQLite and"
        " PostgreSQL; writes results/scale.md",
    )
    parser.add_argument(
        "--garbage",
        action="store_true",
        help="tokens the server never minted (unknown, random, truncated, forged) against known"
        " ones, SQLite and PostgreSQL, 1 worker; writes results/garbage.md",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        type=Scenario,
        choices=list(Scenario),
        metavar="SCENARIO",
        help=f"scenarios to run on every selected target that serves them: {', '.join(Scenario)}",
    )
    parser.add_argument(
        "--targets", nargs="+", metavar="TARGET", help="targets to run (default: the mode's)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: 2 s measurements, 1 s warm-up, 1 round (overrides those flags)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.rounds = 2, 1, 1
    return args


def assign(
    targets: Sequence[Target],
    chosen: Mapping[str, Sequence[Scenario] | None],
    only: Sequence[Scenario] | None,
) -> dict[str, list[Scenario]]:
    """The scenarios each chosen target runs (targets left with none are left out)."""
    assigned = {}
    for target in targets:
        if target.key not in chosen:
            continue
        wanted = only or chosen[target.key] or list(target.loads)
        if scenarios := [s for s in wanted if s in target.loads]:
            assigned[target.key] = scenarios
    return assigned


def plan(
    targets: Sequence[Target], assigned: Mapping[str, Sequence[Scenario]], rounds: int
) -> list[Step]:
    steps: list[Step] = []
    for round_no in range(1, rounds + 1):
        for scenario in Scenario:
            serving = [t for t in targets if scenario in assigned.get(t.key, ())]
            if round_no % 2 == 0:
                serving.reverse()
            steps += [(round_no, scenario, target) for target in serving]
    return steps


def measure(
    steps: Sequence[Step], servers: dict[str, Server], settings: RunSettings
) -> tuple[list[Measurement], list[str]]:
    """Warm up, then measure each step; returns the measurements and what failed."""
    measurements: list[Measurement] = []
    failures: list[str] = []
    dead: set[str] = set()
    wrk_options = {"connections": settings.connections, "threads": settings.threads}
    for index, (round_no, scenario, target) in enumerate(steps, 1):
        label = f"[{index}/{len(steps)}] round {round_no} {scenario} on {target.key}"
        if target.key in dead:
            continue
        if exited := servers[target.key].exit_report():
            dead.add(target.key)
            failures.append(exited)
            print(f"{label}: server gone: {exited}", flush=True)
            continue
        try:
            load = target.loads[scenario]()
            if settings.warmup_s:
                run_wrk(target.base_url, load, duration_s=settings.warmup_s, **wrk_options)
                if load.single_use:
                    load = target.loads[scenario]()
            with PeakRss(servers[target.key].pid) as rss, beside(load, settings) as side:
                result = run_wrk(
                    target.base_url, load, duration_s=settings.duration_s, **wrk_options
                )
        except (LoadError, WrkError) as error:
            failures.append(f"{scenario} on {target.key}, round {round_no}: {error}")
            print(f"{label}: FAILED {error}", flush=True)
            continue
        peak_mb = rss.peak_bytes / 2**20
        measurements.append(
            Measurement(round_no, scenario, target.key, result, peak_mb, side.get("logins_per_s"))
        )
        if side:
            print(f"{label}: beside it {side}", flush=True)
        print(
            f"{label}: {result.rps:,.0f} req/s, p50 {result.p50_ms:.2f} ms,"
            f" p99 {result.p99_ms:.2f} ms, non-2xx {result.non2xx} (429: {result.throttled}),"
            f" socket errors {result.socket_errors}, peak RSS {peak_mb:.0f} MB",
            flush=True,
        )
    return measurements, failures


@contextmanager
def beside(load: Load, settings: RunSettings) -> Iterator[dict[str, float]]:
    """Run the load's background command (if any) for the measurement; the dict it yields is
    filled, once the block ends, with what the command reported (logins per second)."""
    found: dict[str, float] = {}
    if not load.background:
        yield found
        return
    process = subprocess.Popen(
        [*load.background, "--seconds", str(settings.duration_s)],
        cwd=BENCH_DIR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None
    process.stdin.write(load.background_input)
    process.stdin.close()
    try:
        yield found
    finally:
        assert process.stdout is not None
        out = process.stdout.read()
        process.wait(timeout=60)
        try:
            report = json.loads(out.strip().splitlines()[-1])
            found["logins_per_s"] = report["logins"] / report["seconds"]
            found["login_failures"] = report["failures"]
        except (ValueError, KeyError, IndexError, ZeroDivisionError):
            found["login_failures"] = -1


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    settings = RunSettings(
        args.duration, args.warmup, args.connections, args.threads, args.rounds, args.quick
    )
    mode = SCALE if args.scale else GARBAGE if args.garbage else DEFAULT
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    machine = machine_info()

    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="oauth-bench-")))
        every = default_targets(
            workdir, max(settings.duration_s, settings.warmup_s), settings.connections
        )
        unknown = set(args.targets or ()) - {t.key for t in every}
        if unknown:
            known = ", ".join(t.key for t in every)
            sys.exit(f"unknown target(s) {', '.join(sorted(unknown))}; known: {known}")
        chosen = {key: mode.plan.get(key) for key in args.targets} if args.targets else mode.plan
        assigned = assign(every, chosen, args.only)
        selected = [t for t in every if t.key in assigned]
        skipped = [f"{t.key}: {t.missing}" for t in selected if t.missing]
        available = [t for t in selected if not t.missing]

        steps = plan(available, assigned, settings.rounds)
        loading = sum(LOAD_ESTIMATE_S for t in available if t.loaded)
        estimate = len(steps) * (settings.warmup_s + settings.duration_s + 0.5) + loading
        print(f"{len(steps)} measurements, about {estimate / 60:.1f} min", flush=True)
        if estimate > TIME_BUDGET_S:
            print(f"warning: over the {TIME_BUDGET_S // 60} min budget", flush=True)

        servers: dict[str, Server] = {}
        loads: list[LoadReport] = []
        for target in available:
            log = RAW_DIR / "logs" / f"{target.key}.log"
            try:
                servers[target.key], loaded = stack.enter_context(provisioned_server(target, log))
            except (DatabaseError, ServerError) as error:
                skipped.append(f"{target.key}: {error}")
                continue
            if loaded:
                loads.append(loaded)
        for reason in skipped:
            print(f"skipped: {reason}", flush=True)
        startups = {key: server.ready_s for key, server in servers.items()}
        started = time.monotonic()
        measurements, failures = measure(
            [step for step in steps if step[2].key in servers], servers, settings
        )
        print(f"measured in {(time.monotonic() - started) / 60:.1f} min", flush=True)

    skipped += failures
    if not measurements:
        print("nothing was measured", file=sys.stderr)
        return 1
    rows = aggregate(measurements, every)
    out_dir = RAW_DIR / "quick" if settings.quick else RESULTS_DIR
    (out_dir / "history").mkdir(parents=True, exist_ok=True)
    RAW_DIR.mkdir(parents=True, exist_ok=True)
    body = render_markdown(rows, machine, settings, skipped, loads, startups)
    markdown = f"# {mode.title}\n\n{body}"
    report, chart = out_dir / f"{mode.name}.md", out_dir / f"{mode.name}.png"
    report.write_text(markdown)
    (out_dir / "history" / f"{stamp}-{mode.name}.md").write_text(markdown)
    raw = RAW_DIR / f"{stamp}-{mode.name}{'-quick' if settings.quick else ''}.json"
    raw.write_text(raw_json(measurements, rows, machine, settings, skipped, loads))
    write_chart(rows, chart, f"{machine['cpu']}, {machine['date']}")
    print(markdown)
    written = [report, chart, raw]
    if not settings.quick and update_readme(README, mode.readme_block, body):
        written.append(README)
    print(f"written: {', '.join(map(str, written))}")
    if any(r.non2xx or r.socket_errors for r in rows):
        print("warning: some requests failed (non-2xx or socket errors)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: servers stopped, databases dropped", file=sys.stderr)
        sys.exit(130)
