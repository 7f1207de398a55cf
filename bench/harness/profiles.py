"""Sampling a server with py-spy and summing its collapsed stacks into a readable summary."""

import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from . import BENCH_DIR

PY_SPY = Path(sys.executable).with_name("py-spy")
PROFILES_DIR = BENCH_DIR / "results"
DEFAULT_TARGET = "python-w1-sqlite"
MAIN_THREAD = "MainThread"
_THREAD = re.compile(r"(?:^|;)thread \((\w+)\): ([^;]*)")
_THREAD_NUMBER = re.compile(r"^Thread-\d+ ")


def profile_path(scenario: str, target_key: str) -> Path:
    """Where bench/profile.py writes the summary of a scenario on a target."""
    suffix = "" if target_key == DEFAULT_TARGET else f"-{target_key}"
    return PROFILES_DIR / f"profile-{scenario}{suffix}.txt"


class ProfileError(RuntimeError):
    """py-spy is missing or failed."""


def py_spy() -> str:
    found = str(PY_SPY) if PY_SPY.exists() else shutil.which("py-spy")
    if found is None:
        raise ProfileError("py-spy is not installed: `make install` brings the dev dependencies")
    return found


def start_recording(
    pid: int, duration_s: int, rate: int, output: Path, *, subprocesses: bool
) -> subprocess.Popen[str]:
    """py-spy record in the background: collapsed stacks, per thread, by function."""
    argv = [
        py_spy(),
        "record",
        f"--pid={pid}",
        f"--duration={duration_s}",
        f"--rate={rate}",
        "--format=raw",
        "--function",
        "--threads",
        f"--output={output}",
    ]
    if subprocesses:
        argv.append("--subprocesses")
    return subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def finish_recording(process: subprocess.Popen[str], timeout: float) -> None:
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise ProfileError("py-spy did not finish in time") from None
    if process.returncode != 0:
        raise ProfileError(f"py-spy exited {process.returncode}: {output.strip()[-500:]}")


@dataclass
class Profile:
    """Samples of the main threads (all processes summed) and the other threads' counts.

    py-spy leaves idle samples out, so these are the samples in which a thread was running
    Python code, or C code called from it (uvloop, httptools, hashlib, sqlite3...), which counts
    towards the calling Python frame.
    """

    samples: int = 0
    self_time: Counter[str] = field(default_factory=Counter)
    inclusive: Counter[str] = field(default_factory=Counter)
    packages: Counter[str] = field(default_factory=Counter)
    other_samples: Counter[str] = field(default_factory=Counter)
    other_threads: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, collapsed: str) -> "Profile":
        """From py-spy's raw output: `[process …;]thread (tid): name;frame;…;frame count`."""
        profile = cls()
        for line in collapsed.splitlines():
            stack, _, count_text = line.rpartition(" ")
            # Process frames quote command lines, which may hold ";": find the thread's frame.
            thread = _THREAD.search(stack)
            if thread is None or not count_text.isdigit():
                continue
            tid, name = thread.groups()
            frames = stack[thread.end() :].split(";")[1:]
            count = int(count_text)
            if name != MAIN_THREAD:
                kind = _THREAD_NUMBER.sub("", name)  # "Thread-12 (run)" -> "(run)"
                profile.other_samples[kind] += count
                profile.other_threads.setdefault(kind, set()).add(tid)
                continue
            profile.samples += count
            if frames:
                profile.self_time[frames[-1]] += count
                profile.packages[_package(frames[-1])] += count
            for frame in set(frames):
                profile.inclusive[frame] += count
        return profile

    def summary(self, top: int) -> list[str]:
        if not self.samples:
            return ["No sample of a main thread running: was the server under load?"]
        # The start-up frames and the event loop's run sit under (nearly) every sample.
        widest = max(self.inclusive.values())
        trunk = {f for f, n in self.inclusive.items() if n >= 0.95 * widest}
        return [
            f"Main-thread samples (idle left out): {self.samples:,}",
            *(
                f"Other threads {kind}: {len(self.other_threads[kind])} thread(s),"
                f" {count:,} samples (an upper bound: py-spy takes some threads that wait"
                " in C, on a queue or a lock, for running)"
                for kind, count in self.other_samples.most_common()
            ),
            "",
            "Main thread, self time by package (where each sample was taken):",
            *(
                f"  {_share(count, self.samples)}  {package}"
                for package, count in self.packages.most_common(top)
            ),
            "",
            f"Main thread, hottest functions by self time (top {top}):",
            "   self  inclusive  function (file:line)",
            *(
                f"  {_share(count, self.samples)}  {_share(self.inclusive[frame], self.samples)}"
                f"     {frame}"
                for frame, count in self.self_time.most_common(top)
            ),
            "",
            f"Main thread, hottest functions by inclusive time (top {top}; left out: the"
            f" {len(trunk)} start-up and event-loop frames under nearly every sample):",
            " inclusive   self  function (file:line)",
            *[
                f"  {_share(count, self.samples)}  {_share(self.self_time[frame], self.samples)}"
                f"  {frame}"
                for frame, count in self.inclusive.most_common()
                if frame not in trunk
            ][:top],
        ]


def _share(count: int, total: int) -> str:
    return f"{100 * count / total:5.1f}%"


def _package(frame: str) -> str:
    """`name (path/to/file.py:12)` -> the path's first part: the package, or a stdlib module."""
    location = frame.rpartition(" (")[2].rstrip(")")
    path = location.rpartition(":")[0] or location
    return path.split("/", 1)[0].removesuffix(".py")
