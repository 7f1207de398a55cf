"""The README's "Security and reliability" table names, for each guarantee, the tests that show
it. A renamed or deleted test must break the build, not leave the README pointing at nothing."""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Callable
from pathlib import Path

from oauth_server.audit.trail import AuditTrail
from oauth_server.maintenance import Purger
from oauth_server.oauth.keys import KeyManager
from oauth_server.oauth.tokens.verify.jwks import RemoteJwks
from oauth_server.storage.sql import engine

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"

_CODE = re.compile(r"`([^`]+)`")


def table_rows() -> list[str]:
    """The "Shown by" cells of the Security and reliability table."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Security and reliability", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    cells = [row.rsplit("|", 2)[1] for row in rows[1:]]  # past the header row
    assert len(cells) > 20, "the table was not found"
    return cells


def references(cell: str) -> list[tuple[str, str | None]]:
    """Each (test file, test name or None) a cell names. Forms used: ``tests/d/test_x.py``,
    ``tests/d/test_x.py::name``, ``::name`` and a bare ``test_name`` (in the file named last),
    ``test_y.py::name`` and ``test_y.py`` (in the folder named last)."""
    found: list[tuple[str, str | None]] = []
    folder = "tests"
    current: str | None = None
    for token in _CODE.findall(cell):
        if token.startswith("make ") or "*" in token:
            continue
        path, _, name = token.partition("::")
        if path.endswith(".py"):
            if "/" not in path:
                path = f"{folder}/{path}"
            folder = path.rsplit("/", 1)[0]
            current = path
            found.append((path, name or None))
        elif (not path and name) or (path.startswith("test_") and not name):
            assert current is not None, f"{token!r} names no file: {cell}"
            found.append((current, name or path))
    return found


def defined_tests(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test")
    }


def test_every_test_the_security_table_names_exists() -> None:
    missing = []
    checked = 0
    for cell in table_rows():
        for file, name in references(cell):
            path = ROOT / file
            if not path.is_file():
                missing.append(f"{file} (no such file)")
                continue
            if name is not None and name not in defined_tests(path):
                missing.append(f"{file}::{name}")
            checked += 1
    assert not missing, "the README names tests that do not exist: " + ", ".join(missing)
    assert checked > 60  # the table was parsed, not skipped over


def test_the_reference_parser_reads_every_form() -> None:
    cell = (
        " `tests/e2e/test_a.py::test_one`, `::test_two`, `test_b.py::test_three`, `test_c.py`,"
        " `tests/unit/test_d.py` (`test_four`, `test_five`), `make mutate`,"
        " `tests/unit/test_*_mutants.py`, `tests/e2e/test_e.py` (`::test_six`),"
        " `tests/e2e/test_f.py` (a note on `pg_stat_activity`), `test_seven`"
    )
    assert references(cell) == [
        ("tests/e2e/test_a.py", "test_one"),
        ("tests/e2e/test_a.py", "test_two"),
        ("tests/e2e/test_b.py", "test_three"),
        ("tests/e2e/test_c.py", None),
        ("tests/unit/test_d.py", None),
        ("tests/unit/test_d.py", "test_four"),
        ("tests/unit/test_d.py", "test_five"),
        ("tests/e2e/test_e.py", None),
        ("tests/e2e/test_e.py", "test_six"),
        ("tests/e2e/test_f.py", None),
        ("tests/e2e/test_f.py", "test_seven"),
    ]


def default(callable_: Callable[..., object], parameter: str) -> object:
    return inspect.signature(callable_).parameters[parameter].default


def test_the_numbers_the_readme_states_are_the_codes() -> None:
    """Bounds the README states in prose (each used by the services as these defaults); their
    behaviour is tested where they are implemented, with smaller values. If one changes, so
    must the README."""
    readme = README.read_text(encoding="utf-8")
    stated = {
        # "waiting for a pooled connection, a new connection or one statement is each bounded
        # to 3 s"
        "each bounded to 3 s": engine.DATABASE_TIMEOUT == 3.0,
        # "writes 503 after the 10 s busy timeout"
        "the 10 s busy timeout": "PRAGMA busy_timeout=10000" in inspect.getsource(engine),
        # Purge: "opaque tokens and JWT revocations ten minutes after the tokens expired",
        # "in batches of 1,000 rows", "signing keys a day after their verification window"
        "ten\nminutes after the tokens expired": default(Purger, "grace") == 600,
        "in batches of 1,000 rows": default(Purger, "batch_size") == 1000,
        "signing keys a day after their verification window": default(Purger, "key_margin")
        == 86_400,
        # Audit: "writes the buffer every second, in batches of 500 rows", "beyond 100,000"
        "writes the buffer every second, in batches of 500 rows": (
            default(AuditTrail, "flush_interval"),
            default(AuditTrail, "batch_size"),
        )
        == (1.0, 500),
        "beyond 100,000 waiting events": default(AuditTrail, "max_buffered") == 100_000,
        # "refreshing on an unknown `kid` at most every 10 s; the issuer's own key manager
        # re-reads the keys table on an unknown `kid` at most once a second"
        "at most every 10 s": default(RemoteJwks, "min_refresh_interval") == 10.0,
        "at most once a\n  second": default(KeyManager, "min_reload_interval") == 1.0,
        "`RemoteJwks`\n  refreshes every 300 s": default(RemoteJwks, "max_age") == 300.0,
    }
    for sentence, holds in stated.items():
        assert " ".join(sentence.split()) in " ".join(readme.split()), sentence
        assert holds, sentence
