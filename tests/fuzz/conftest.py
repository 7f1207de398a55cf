"""Hypothesis profiles for the fuzz tests.

``fuzz`` (the default, used by ``make test`` and CI) is derandomized: every run tries the same
examples, so a failure reproduces and a green run stays green. ``fuzz-explore`` draws new
random examples on every run, many more of them, and keeps failures in the example database:
run it by hand or on a schedule to look for new bugs::

    OAUTH_SERVER_TEST_FUZZ_PROFILE=fuzz-explore .venv/bin/pytest tests/fuzz

The profile is loaded when this directory is collected; no other test uses Hypothesis.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile(
    "fuzz",
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
)
settings.register_profile(
    "fuzz-explore",
    max_examples=2_000,
    deadline=None,
    derandomize=False,
    print_blob=True,
)
settings.load_profile(os.environ.get("OAUTH_SERVER_TEST_FUZZ_PROFILE", "fuzz"))
