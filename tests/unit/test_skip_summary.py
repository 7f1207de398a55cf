"""A run that skipped tests says so at its end, loudly, with the reasons and how to run the
full suite (tests/conftest.py ``pytest_terminal_summary``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SKIPPING = """
from tests.conftest import unavailable


def test_needs_a_service() -> None:
    unavailable("PostgreSQL unreachable at nowhere")


def test_needs_it_too() -> None:
    unavailable("PostgreSQL unreachable at nowhere")


def test_needs_another() -> None:
    unavailable("Redis unreachable")


def test_runs() -> None:
    pass
"""


def run_pytest(directory: Path, *, strict: bool) -> subprocess.CompletedProcess[str]:
    (directory / "test_skipping.py").write_text(SKIPPING)
    env = {k: v for k, v in os.environ.items() if k != "OAUTH_SERVER_TEST_STRICT"}
    if strict:
        env["OAUTH_SERVER_TEST_STRICT"] = "1"
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-q", "-p", "no:cacheprovider",
         "--rootdir", str(directory), str(directory)],
        cwd=directory, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_skips_end_the_run_with_a_count_by_reason(tmp_path: Path) -> None:
    done = run_pytest(tmp_path, strict=False)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = done.stdout[done.stdout.index("3 TESTS SKIPPED") :]
    assert "2 skipped: PostgreSQL unreachable at nowhere" in summary
    assert "1 skipped: Redis unreachable" in summary
    assert "OAUTH_SERVER_TEST_STRICT=1 make test" in summary
    # After the per-test list of skips, just before the final counts.
    assert summary.rstrip().splitlines()[-1].startswith("1 passed, 3 skipped")


def test_strict_mode_fails_instead(tmp_path: Path) -> None:
    done = run_pytest(tmp_path, strict=True)
    assert done.returncode == 1
    assert "3 failed, 1 passed" in done.stdout
    assert "TESTS SKIPPED" not in done.stdout
