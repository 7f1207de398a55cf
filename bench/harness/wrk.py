"""Running wrk with one of the bench/wrk scripts and reading its BENCH_JSON summary."""

import json
import os
import subprocess
from dataclasses import dataclass

from .loads import Load

_MARKER = "BENCH_JSON "


class WrkError(RuntimeError):
    """wrk failed or printed no summary."""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p99_ms: float
    non2xx: int
    throttled: int  # 429 responses, counted among non2xx too
    socket_errors: int


def run_wrk(
    base_url: str, load: Load, *, duration_s: int, connections: int, threads: int
) -> WrkResult:
    argv = [
        "wrk",
        f"--threads={threads}",
        f"--connections={connections}",
        f"--duration={duration_s}s",
        "--timeout=10s",
        f"--script={load.script_path}",
        base_url + load.path,
    ]
    done = subprocess.run(
        argv,
        env=os.environ | dict(load.env) | {"BENCH_THREADS": str(threads)},
        capture_output=True,
        text=True,
        timeout=duration_s + 60,
        check=False,
    )
    # wrk reports a Lua error on stderr yet goes on with a default GET, so any stderr is fatal.
    if done.returncode != 0 or done.stderr.strip():
        raise WrkError(f"wrk exited {done.returncode}: {done.stderr.strip()}")
    for line in done.stdout.splitlines():
        if line.startswith(_MARKER):
            return WrkResult(**json.loads(line.removeprefix(_MARKER)))
    raise WrkError(f"no {_MARKER.strip()} line in wrk output: {done.stdout[-500:]}")
