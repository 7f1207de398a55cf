"""The benchmark harness behind bench/run.py: targets, server processes, wrk, report."""

from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = BENCH_DIR.parent
OAUTH_SERVER_CLI = REPO_DIR / ".venv" / "bin" / "oauth-server"
