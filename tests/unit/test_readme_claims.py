"""The README's "Security and reliability" table names, for each guarantee, the tests that show
it. A renamed or deleted test must break the build, not leave the README pointing at nothing."""

from __future__ import annotations

import ast
import re
from pathlib import Path

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
    ``tests/d/test_x.py::name``, ``::name`` (the file named last), ``test_y.py::name`` and
    ``test_y.py`` (in the folder named last), and ``file (`name`, `name`)``."""
    found: list[tuple[str, str | None]] = []
    folder = "tests"
    current: str | None = None
    consumed = 0  # the end of a parenthesized list of names already read
    for match in _CODE.finditer(cell):
        token = match.group(1)
        if match.start() < consumed:
            continue
        if token.startswith("make ") or "*" in token or not (".py" in token or "::" in token):
            continue
        path, _, name = token.partition("::")
        if path:
            if "/" not in path:
                path = f"{folder}/{path}"
            folder = path.rsplit("/", 1)[0]
            current = path
        elif current is None:
            raise AssertionError(f"{token!r} names no file: {cell}")
        else:
            path = current
        if not name:
            # ``file (`name`, ...)``: names in parentheses right after the file.
            rest = cell[match.end() :]
            if rest.startswith(" ("):
                inner = rest[2 : rest.index(")")]
                names = [sub.removeprefix("::") for sub in _CODE.findall(inner)]
                if names and all(sub.startswith("test") for sub in names):
                    found.extend((path, sub) for sub in names)
                    consumed = match.end() + rest.index(")")
                    continue
        found.append((path, name or None))
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
        " `tests/e2e/test_f.py` (a note on `pg_stat_activity`)"
    )
    assert references(cell) == [
        ("tests/e2e/test_a.py", "test_one"),
        ("tests/e2e/test_a.py", "test_two"),
        ("tests/e2e/test_b.py", "test_three"),
        ("tests/e2e/test_c.py", None),
        ("tests/unit/test_d.py", "test_four"),
        ("tests/unit/test_d.py", "test_five"),
        ("tests/e2e/test_e.py", "test_six"),
        ("tests/e2e/test_f.py", None),
    ]
