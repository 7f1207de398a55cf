"""Rules that keep the suite easy to read and to extend (issue 13 item 6), checked on the source
of the test modules so that they hold from now on: no test module silently replaces a fixture
of a conftest.py that applies to it (a test reading ``settings`` gets the conftest's, always),
and no test module imports another test module (shared code lives in tests/helpers.py and its
siblings)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def _fixture_decorated(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    """The name a function is registered under as a fixture, or None if it is not one."""
    for decorator in node.decorator_list:
        call = decorator if isinstance(decorator, ast.Call) else None
        target = call.func if call else decorator
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
        if name != "fixture":
            continue
        for keyword in call.keywords if call else []:
            if keyword.arg == "name" and isinstance(keyword.value, ast.Constant):
                return str(keyword.value.value)
        return node.name
    return None


def fixtures(path: Path, source: str | None = None) -> dict[str, int]:
    """The fixtures ``path`` (or ``source``, as if it were that file) defines at module level
    (name → line)."""
    tree = ast.parse(path.read_text(encoding="utf-8") if source is None else source)
    found = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            name = _fixture_decorated(node)
            if name is not None:
                found[name] = node.lineno
    return found


def conftest_fixtures(module: Path) -> dict[str, Path]:
    """The conftest fixtures visible to ``module`` (those of every conftest.py from tests/ down
    to its folder)."""
    visible: dict[str, Path] = {}
    folder = TESTS
    for part in (*module.relative_to(TESTS).parent.parts, None):
        conftest = folder / "conftest.py"
        if conftest.is_file():
            visible.update(dict.fromkeys(fixtures(conftest), conftest))
        if part is None:
            break
        folder = folder / part
    return visible


def all_test_modules() -> list[Path]:
    return sorted(TESTS.rglob("test_*.py"))


def overrides(module: Path, source: str | None = None) -> list[str]:
    visible = conftest_fixtures(module)
    return [
        f"{module.relative_to(TESTS.parent)}:{line} redefines fixture {name!r} of "
        f"{visible[name].relative_to(TESTS.parent)}"
        for name, line in fixtures(module, source).items()
        if name in visible
    ]


def imported_test_modules(module: Path, source: str | None = None) -> list[str]:
    tree = ast.parse(module.read_text(encoding="utf-8") if source is None else source)
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
            names.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return [
        f"{module.relative_to(TESTS.parent)} imports {name}"
        for name in names
        if name.startswith("tests.") and name.rsplit(".", 1)[-1].startswith("test_")
    ]


def test_no_test_module_redefines_a_conftest_fixture() -> None:
    found = [line for module in all_test_modules() for line in overrides(module)]
    assert not found, "rename these fixtures to what they are:\n" + "\n".join(found)


def test_no_conftest_redefines_a_fixture_of_a_parent_conftest() -> None:
    found = []
    for conftest in sorted(TESTS.rglob("conftest.py")):
        if conftest.parent == TESTS:
            continue
        parent = conftest_fixtures(conftest.parent)  # the conftests above it (and itself)
        own = fixtures(conftest)
        above = {name: path for name, path in parent.items() if path != conftest}
        found += [f"{conftest}: {name!r} of {above[name]}" for name in own if name in above]
    assert not found, found


def test_no_test_module_imports_another() -> None:
    found = [line for module in all_test_modules() for line in imported_test_modules(module)]
    assert not found, "move shared code to tests/helpers.py:\n" + "\n".join(found)


def test_the_checks_see_an_override_and_an_import() -> None:
    """The checks themselves can fail: on a module that redefines ``settings`` under another
    function name and ``storage`` under its own, and imports a test module."""
    module = TESTS / "e2e" / "test_hygiene_probe.py"
    source = (
        "import pytest\n"
        "import tests.unit.test_keys\n"
        "from tests.e2e import test_docs\n"
        "from tests.helpers import basic\n"
        "@pytest.fixture(name='settings')\n"
        "def local_settings(): ...\n"
        "@pytest_asyncio.fixture\n"
        "async def storage(): ...\n"
        "@pytest.fixture\n"
        "def fine(): ...\n"
    )
    assert [line.split(" redefines fixture ")[1] for line in overrides(module, source)] == [
        "'settings' of tests/conftest.py",
        "'storage' of tests/conftest.py",
    ]
    assert imported_test_modules(module, source) == [
        "tests/e2e/test_hygiene_probe.py imports tests.unit.test_keys",
        "tests/e2e/test_hygiene_probe.py imports tests.e2e.test_docs",
    ]
