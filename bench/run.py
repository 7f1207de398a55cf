#!/usr/bin/env python3
"""Benchmark PythonOauthServer against node-oidc-provider 9 and a bare-ASGI ceiling, with wrk.

    python bench/run.py            # full run: 10 s per measurement, 2 rounds (under 10 minutes)
    python bench/run.py --quick    # smoke test, written under bench/results/raw/quick/
    python bench/run.py --only cc-jwt-post introspect --targets node-jwt node-opaque

Every selected server runs on its own loopback port for the whole run; the measurements alternate
between them scenario by scenario (the order reversed every other round), so drift hits all alike.
Run bench/setup.sh first (wrk, node_modules). Targets that cannot run here are skipped and listed.
"""

import argparse
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from harness import BENCH_DIR
from harness.loads import LoadError, Scenario
from harness.machine import machine_info
from harness.report import (
    Measurement,
    RunSettings,
    aggregate,
    raw_json,
    render_markdown,
    write_chart,
)
from harness.servers import PeakRss, Server, ServerError, running
from harness.targets import Target, default_targets
from harness.wrk import WrkError, run_wrk

RESULTS_DIR = BENCH_DIR / "results"
RAW_DIR = RESULTS_DIR / "raw"
TIME_BUDGET_S = 600

Step = tuple[int, Scenario, Target]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up before each")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--rounds", type=int, default=2, help="the median over rounds is reported")
    parser.add_argument(
        "--only",
        nargs="+",
        type=Scenario,
        choices=list(Scenario),
        metavar="SCENARIO",
        help=f"scenarios to run (default all): {', '.join(Scenario)}",
    )
    parser.add_argument(
        "--targets", nargs="+", metavar="TARGET", help="targets to run (default all)"
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


def plan(targets: Sequence[Target], scenarios: Sequence[Scenario], rounds: int) -> list[Step]:
    steps: list[Step] = []
    for round_no in range(1, rounds + 1):
        for scenario in scenarios:
            serving = [t for t in targets if scenario in t.loads]
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
            with PeakRss(servers[target.key].pid) as rss:
                result = run_wrk(
                    target.base_url, load, duration_s=settings.duration_s, **wrk_options
                )
        except (LoadError, WrkError) as error:
            failures.append(f"{scenario} on {target.key}, round {round_no}: {error}")
            print(f"{label}: FAILED {error}", flush=True)
            continue
        peak_mb = rss.peak_bytes / 2**20
        measurements.append(Measurement(round_no, scenario, target.key, result, peak_mb))
        print(
            f"{label}: {result.rps:,.0f} req/s, p50 {result.p50_ms:.2f} ms,"
            f" p99 {result.p99_ms:.2f} ms, non-2xx {result.non2xx},"
            f" socket errors {result.socket_errors}, peak RSS {peak_mb:.0f} MB",
            flush=True,
        )
    return measurements, failures


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    settings = RunSettings(
        args.duration, args.warmup, args.connections, args.threads, args.rounds, args.quick
    )
    scenarios: list[Scenario] = args.only or list(Scenario)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    machine = machine_info()

    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="oauth-bench-")))
        every = default_targets(workdir)
        unknown = set(args.targets or ()) - {t.key for t in every}
        if unknown:
            known = ", ".join(t.key for t in every)
            sys.exit(f"unknown target(s) {', '.join(sorted(unknown))}; known: {known}")
        chosen = [t for t in every if not args.targets or t.key in args.targets]
        skipped = [f"{t.key}: {t.missing}" for t in chosen if t.missing]
        available = [t for t in chosen if not t.missing]

        servers: dict[str, Server] = {}
        for target in available:
            if any(s in target.loads for s in scenarios):
                try:
                    log = RAW_DIR / "logs" / f"{target.key}.log"
                    servers[target.key] = stack.enter_context(running(target, log))
                except ServerError as error:
                    skipped.append(str(error))
        steps = plan([t for t in available if t.key in servers], scenarios, settings.rounds)
        estimate = len(steps) * (settings.warmup_s + settings.duration_s + 1)
        print(f"{len(steps)} measurements, about {estimate / 60:.1f} min", flush=True)
        if estimate > TIME_BUDGET_S:
            print(f"warning: over the {TIME_BUDGET_S // 60} min budget", flush=True)
        for reason in skipped:
            print(f"skipped: {reason}", flush=True)
        started = time.monotonic()
        measurements, failures = measure(steps, servers, settings)
        print(f"measured in {(time.monotonic() - started) / 60:.1f} min", flush=True)

    skipped += failures
    if not measurements:
        print("nothing was measured", file=sys.stderr)
        return 1
    rows = aggregate(measurements, every)
    out_dir = RAW_DIR / "quick" if settings.quick else RESULTS_DIR
    (out_dir / "history").mkdir(parents=True, exist_ok=True)
    RAW_DIR.mkdir(parents=True, exist_ok=True)
    markdown = render_markdown(rows, machine, settings, skipped)
    for path in (out_dir / "latest.md", out_dir / "history" / f"{stamp}.md"):
        path.write_text(markdown)
    (RAW_DIR / f"{stamp}{'-quick' if settings.quick else ''}.json").write_text(
        raw_json(measurements, rows, machine, settings, skipped)
    )
    write_chart(rows, out_dir / "latest.png", f"{machine['cpu']}, {machine['date']}")
    print(markdown)
    print(f"written: {out_dir / 'latest.md'}, {out_dir / 'latest.png'}, {RAW_DIR}/{stamp}*.json")
    if any(r.non2xx or r.socket_errors for r in rows):
        print("warning: some requests failed (non-2xx or socket errors)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: servers stopped", file=sys.stderr)
        sys.exit(130)
