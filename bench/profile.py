#!/usr/bin/env python3
"""Profile PythonOauthServer under wrk load with py-spy: where each scenario spends its time.

    python bench/profile.py                       # every scenario on python-w1-sqlite
    python bench/profile.py introspect-unknown --targets python-w1-postgresql-loaded
    python bench/profile.py cc-opaque-post --targets python-w2-sqlite python-w2-postgresql

For each scenario: the server is warmed up, then sampled by py-spy while wrk drives it, and
the hottest frames of its main thread (self and inclusive time) are written to
bench/results/profile-<scenario>.txt (profile-<scenario>-<target>.txt off the default target),
py-spy's collapsed stacks to bench/results/raw/ (input for flamegraph.pl or speedscope).
The profiler slows the server down: the req/s it prints are for orientation, not comparison.
"""

import argparse
import signal
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from harness import BENCH_DIR
from harness.databases import DatabaseError
from harness.loads import LoadError, Scenario
from harness.profiles import (
    DEFAULT_TARGET,
    Profile,
    ProfileError,
    finish_recording,
    profile_path,
    py_spy,
    start_recording,
)
from harness.servers import ServerError, provisioned_server
from harness.targets import Role, Target, default_targets
from harness.wrk import WrkError, WrkResult, run_wrk

RAW_DIR = BENCH_DIR / "results" / "raw"  # py-spy's collapsed stacks (not committed)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "scenarios",
        nargs="*",
        type=Scenario,
        metavar="SCENARIO",
        help=f"default: every scenario a target serves ({', '.join(Scenario)})",
    )
    parser.add_argument(
        "--targets",
        nargs="+",
        default=[DEFAULT_TARGET],
        metavar="TARGET",
        help=f"our server's targets, one after the other (default {DEFAULT_TARGET})",
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds sampled per scenario")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of load before sampling")
    parser.add_argument("--rate", type=int, default=200, help="samples per second")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--top", type=int, default=25, help="functions listed per ranking")
    return parser.parse_args(argv)


def profile(
    target: Target, pid: int, scenario: Scenario, args: argparse.Namespace, raw: Path
) -> tuple[Profile, WrkResult]:
    """Warm up, then sample while wrk drives the scenario; py-spy's stacks go to `raw`."""
    load = target.loads[scenario]()
    wrk_options = {"connections": args.connections, "threads": args.threads}
    run_wrk(target.base_url, load, duration_s=args.warmup, **wrk_options)
    if load.single_use:  # the warm-up used up its codes or tokens
        load = target.loads[scenario]()
    recording = start_recording(pid, args.duration, args.rate, raw, subprocesses=target.workers > 1)
    try:
        result = run_wrk(target.base_url, load, duration_s=args.duration, **wrk_options)
    finally:
        finish_recording(recording, timeout=args.duration + 30)
    return Profile.parse(raw.read_text()), result


def write(
    path: Path,
    target: Target,
    scenario: Scenario,
    args: argparse.Namespace,
    found: Profile,
    result: WrkResult,
) -> None:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Profile: {scenario} ({scenario.description})",
        f"Target: {target.key} ({target.server}, {target.config})",
        f"Taken {stamp} by bench/profile.py: py-spy at {args.rate} Hz for {args.duration} s"
        f" after {args.warmup} s of load; wrk {args.threads} threads, {args.connections}"
        f" connections: {result.rps:,.0f} req/s under the profiler, non-2xx {result.non2xx}.",
        "Self time: samples taken in the function itself (C code it calls included);"
        " inclusive: samples with the function anywhere on the stack.",
        "",
        *found.summary(args.top),
    ]
    path.write_text("\n".join(lines) + "\n")


def profile_target(target: Target, args: argparse.Namespace) -> list[str]:
    """Profile the scenarios on one target; returns what failed."""
    failures = []
    log = RAW_DIR / "logs" / f"profile-{target.key}.log"
    with provisioned_server(target, log) as (server, _):
        for scenario in args.scenarios or list(target.loads):
            if scenario not in target.loads:
                failures.append(f"{scenario} on {target.key}: not served")
                continue
            path = profile_path(scenario, target.key)
            raw = RAW_DIR / path.with_suffix(".collapsed").name
            try:
                found, result = profile(target, server.pid, scenario, args, raw)
            except (LoadError, WrkError, ProfileError) as error:
                failures.append(f"{scenario} on {target.key}: {error}")
                continue
            write(path, target, scenario, args, found, result)
            print(f"{scenario} on {target.key}: {result.rps:,.0f} req/s under the profiler: {path}")
    return failures


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        py_spy()
    except ProfileError as error:
        sys.exit(str(error))
    RAW_DIR.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="oauth-profile-") as workdir:
        ours = {
            t.key: t
            for t in default_targets(
                Path(workdir), max(args.duration, args.warmup), args.connections
            )
            if t.role is Role.CANDIDATE
        }
        unknown = set(args.targets) - set(ours)
        if unknown:
            sys.exit(f"unknown target(s) {', '.join(sorted(unknown))}; ours: {', '.join(ours)}")
        for key in args.targets:
            target = ours[key]
            if target.missing:
                failures.append(f"{key}: {target.missing}")
                continue
            try:
                failures += profile_target(target, args)
            except (DatabaseError, ServerError) as error:
                failures.append(f"{key}: {error}")
    for failure in failures:
        print(f"FAILED {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: server stopped", file=sys.stderr)
        sys.exit(130)
