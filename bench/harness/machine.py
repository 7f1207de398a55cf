"""What the benchmark ran on, for the report header."""

import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from .databases import postgres_version
from .targets import node_binary, oidc_provider_version


def machine_info() -> dict[str, str]:
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "cpu": _proc_field("/proc/cpuinfo", "model name") or platform.processor() or "?",
        "cores": str(os.cpu_count()),
        "memory": f"{int(_proc_field('/proc/meminfo', 'MemTotal').split()[0]) / 2**20:.1f} GiB",
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "postgresql": (postgres_version() or "not reachable").split()[0],
        "node": _first_line([node_binary(), "--version"]),
        "oidc-provider": oidc_provider_version() or "not installed",
        "wrk": _first_line(["wrk", "-v"]),
    }


def _proc_field(path: str, name: str) -> str:
    for line in Path(path).read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return ""


def _first_line(argv: list[str]) -> str:
    try:
        # `wrk -v` prints its version, then exits 1: the exit status says nothing here
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "not found"
    lines = (done.stdout + done.stderr).strip().splitlines()
    return lines[0].split(" Copyright")[0] if lines else "?"
