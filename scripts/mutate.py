"""`make mutate`: mutation testing of the security-critical modules, with a per-module summary.

Runs mutmut (configured in pyproject.toml, ``[tool.mutmut]``) from a clean ``mutants/``
directory, then sorts every mutant into killed / survived / timeout / equivalent per module.
A mutant that no unit test even reached ("no tests") counts as a survivor. The exit status is
non-zero when any survivor is not listed in ``tests/mutation/equivalent.txt``.

Mutants are numbered by mutmut, and the numbers shift whenever a function changes, so the
equivalence list names a mutant by a fingerprint that survives unrelated edits: the function
and the line(s) the mutation changes, ``function :: original => mutated`` (whitespace collapsed).
For each unlisted survivor this script prints its fingerprint and diff: kill it with a test,
or — only if no test could tell it apart from the original — add the fingerprint to the list
under a comment saying why.

    .venv/bin/python scripts/mutate.py              # full run (what `make mutate` does)
    .venv/bin/python scripts/mutate.py --report     # summarise the last run again, no re-run
    .venv/bin/python scripts/mutate.py oauth_server.oauth.grants.refresh_token  # one module

Naming modules runs (and reports) only their mutants; mutmut still collects which tests cover
which function over the whole unit suite first.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTANTS = ROOT / "mutants"
EQUIVALENT = ROOT / "tests" / "mutation" / "equivalent.txt"
LOG = MUTANTS / "mutmut-run.log"
BIN = Path(sys.executable).parent
MUTMUT = str(BIN / "mutmut")

# mutmut's statuses, in the summary's columns.
KILLED = {"killed", "caught by type check", "segfault"}
TIMEOUT = {"timeout"}
# Everything else ("survived", "no tests", "suspicious", "not checked", "skipped", …) is a
# mutant the tests did not catch.
_NAME = re.compile(r"^\s*(?P<name>\S+): (?P<status>.+)$")
_MODULE = re.compile(r"^(?P<module>.+?)\.x(?:_|ǁ)")
_SERIAL = re.compile(r"__mutmut_\d+$")


def run_mutmut(max_children: int, modules: list[str]) -> None:
    if MUTANTS.exists():
        shutil.rmtree(MUTANTS)  # a fresh run: no result cached from other code or tests
    MUTANTS.mkdir()
    started = time.monotonic()
    with LOG.open("w") as log:
        # mutmut's progress display is one very long line; it goes to the log, not the terminal.
        done = subprocess.run(
            [MUTMUT, "run", "--max-children", str(max_children), *(f"{m}.*" for m in modules)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
    elapsed = time.monotonic() - started
    (MUTANTS / "elapsed").write_text(f"{elapsed:.0f}\n")
    if done.returncode != 0:
        tail = LOG.read_text(errors="replace")[-4000:]
        sys.exit(f"mutmut run failed (exit {done.returncode}); end of {LOG}:\n{tail}")


def results() -> dict[str, str]:
    out = subprocess.run(
        [MUTMUT, "results", "--all", "true"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    statuses: dict[str, str] = {}
    for line in out.splitlines():
        match = _NAME.match(line)
        if match:
            statuses[match["name"]] = match["status"].strip()
    if not statuses:
        sys.exit("mutmut reported no mutants: is [tool.mutmut] in pyproject.toml right?")
    return statuses


def diff(name: str) -> str:
    try:  # in-process: a hundred times faster than `mutmut show` per mutant
        from mutmut.mutation.diff_apply import get_diff_for_mutant
    except ImportError:  # another mutmut layout: its command line says the same
        shown = subprocess.run(
            [MUTMUT, "show", name], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
        return shown.split("\n", 1)[1]  # without the "# name: status" line
    return str(get_diff_for_mutant(name))


def fingerprint(name: str, mutant_diff: str) -> str:
    removed, added = [], []
    for line in mutant_diff.splitlines():
        if line.startswith(("---", "+++")):
            continue
        if line.startswith("-"):
            removed.append(" ".join(line[1:].split()))
        elif line.startswith("+"):
            added.append(" ".join(line[1:].split()))
    # Stripped, as the list's lines are: a deleted line leaves nothing after "=>".
    return f"{_SERIAL.sub('', name)} :: {' / '.join(removed)} => {' / '.join(added)}".strip()


def equivalent_fingerprints() -> set[str]:
    if not EQUIVALENT.exists():
        return set()
    lines = EQUIVALENT.read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def module_of(name: str) -> str:
    match = _MODULE.match(name)
    return match["module"] if match else name.rsplit(".", 1)[0]


def report(modules: list[str]) -> int:
    statuses = results()
    if modules:
        statuses = {n: s for n, s in statuses.items() if module_of(n) in modules}
        if not statuses:
            sys.exit(f"no mutant of {', '.join(modules)}: see only_mutate in pyproject.toml")
    listed = equivalent_fingerprints()
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    unexplained: list[tuple[str, str, str]] = []
    used: set[str] = set()
    for name, status in sorted(statuses.items()):
        module = module_of(name)
        if status in KILLED:
            counts[module]["killed"] += 1
            continue
        if status in TIMEOUT:
            counts[module]["timeout"] += 1
            continue
        mutant_diff = diff(name)
        print_ = fingerprint(name, mutant_diff)
        if print_ in listed:
            counts[module]["equivalent"] += 1
            used.add(print_)
        else:
            counts[module]["survived"] += 1
            unexplained.append((name, status, mutant_diff))

    columns = ("killed", "survived", "timeout", "equivalent")
    width = max(len(m) for m in counts)
    print(f"\n{'module':<{width}}  " + "  ".join(f"{c:>10}" for c in columns) + "       total")
    total: Counter[str] = Counter()
    for module in sorted(counts):
        row = counts[module]
        total.update(row)
        cells = "  ".join(f"{row[c]:>10}" for c in columns)
        print(f"{module:<{width}}  {cells}  {sum(row.values()):>10}")
    cells = "  ".join(f"{total[c]:>10}" for c in columns)
    print(f"{'all':<{width}}  {cells}  {sum(total.values()):>10}")
    elapsed = MUTANTS / "elapsed"
    if elapsed.exists():
        print(f"mutmut run took {elapsed.read_text().strip()} s")

    if modules:  # entries of the other modules were not looked at
        listed = {e for e in listed if any(e.startswith(f"{m}.") for m in modules)}
    stale = sorted(listed - used)
    if stale:
        print(f"\n{len(stale)} entries of {EQUIVALENT.relative_to(ROOT)} match no surviving mutant")
        print("(the code or a test changed; remove them):")
        for entry in stale:
            print(f"  {entry}")
    if unexplained:
        print(f"\n{len(unexplained)} surviving mutants are not listed as equivalent:\n")
        for name, status, mutant_diff in unexplained:
            print(f"{fingerprint(name, mutant_diff)}\n# {status}\n{mutant_diff}")
        return 1
    print("\nno surviving mutant that is not listed as equivalent")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", action="store_true", help="summarise the last run only")
    parser.add_argument(
        "--max-children", type=int, default=os.cpu_count() or 2, help="parallel mutant runs"
    )
    parser.add_argument(
        "modules", nargs="*", help="only these modules (dotted, as the summary names them)"
    )
    args = parser.parse_args()
    os.chdir(ROOT)  # mutmut reads pyproject.toml and mutants/ from the working directory
    if not args.report:
        run_mutmut(args.max_children, args.modules)
    sys.exit(report(args.modules))


if __name__ == "__main__":
    main()
