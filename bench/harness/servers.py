"""Server processes: start in their own process group, wait for readiness, stop, measure RSS."""

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from http.client import HTTPException
from pathlib import Path

from .databases import migrate, provisioned
from .dataset import LoadReport, load
from .loopback import request
from .targets import Target


class ServerError(RuntimeError):
    """A server did not start or did not become ready."""


@dataclass(frozen=True)
class Server:
    target: Target
    process: subprocess.Popen[bytes]
    log_path: Path
    started: float = 0.0  # time.monotonic() at the start of the process
    ready_s: float = 0.0  # from the start of the process to its first 2xx on ready_path

    @property
    def pid(self) -> int:
        return self.process.pid

    def exit_report(self) -> str | None:
        """None while the server runs; why it stopped once it has."""
        if self.process.poll() is None:
            return None
        return f"{self.target.key} exited with {self.process.returncode}: {_tail(self.log_path)}"


@contextmanager
def running(target: Target, log_path: Path, ready_timeout: float = 60.0) -> Iterator[Server]:
    """Run the target's server for the duration of the block.

    The server leads a new session, so stopping signals its whole process group (workers too),
    whatever ends the block: normal exit, an error, or Ctrl-C.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        started = time.monotonic()
        process = subprocess.Popen(
            target.argv,
            cwd=target.cwd,
            env=os.environ | dict(target.env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        server = Server(target, process, log_path, started)
        try:
            _wait_ready(server, ready_timeout)
            yield replace(server, ready_s=time.monotonic() - started)
        finally:
            _stop(process)


@contextmanager
def provisioned_server(
    target: Target, log_path: Path
) -> Iterator[tuple[Server, LoadReport | None]]:
    """The target's database (created, and loaded with the scale data set if the target asks)
    and its server, for the duration of the block; the server stops before the database goes.
    Yields the server and the data set's load report, if any."""
    report = None
    with ExitStack() as stack:
        if target.database is not None:
            database = stack.enter_context(provisioned(target.database))
            if target.loaded:
                migrate(database, target.env)
                print(f"loading the data set into {target.key}...", flush=True)
                report = load(database)
                print(f"loaded {report.summary()}", flush=True)
        yield stack.enter_context(running(target, log_path)), report


def _wait_ready(server: Server, timeout: float) -> None:
    target = server.target
    url = target.base_url + target.ready_path
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if exited := server.exit_report():
            raise ServerError(exited)
        try:
            status, _ = request(target.port, "GET", target.ready_path, timeout=2)
        except (OSError, HTTPException):
            status = 0
        if 200 <= status < 300:
            return
        time.sleep(0.01)  # fine enough to measure start-up by
    raise ServerError(
        f"{target.key} not ready at {url} after {timeout:.0f} s: {_tail(server.log_path)}"
    )


def _tail(log_path: Path, lines: int = 5) -> str:
    return " | ".join(log_path.read_text(errors="replace").splitlines()[-lines:])


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, then SIGKILL whatever still runs after a grace period."""
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            process.poll()  # reap the leader, so it no longer counts
            if not _group_members(process.pid):
                return
            time.sleep(0.05)


@dataclass(frozen=True)
class _Proc:
    pid: int
    state: str
    ppid: int
    pgrp: int


def _processes() -> Iterator[_Proc]:
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        state, ppid, pgrp = stat.rsplit(")", 1)[1].split()[:3]
        yield _Proc(int(entry.name), state, int(ppid), int(pgrp))


def _group_members(pgid: int) -> list[int]:
    return [p.pid for p in _processes() if p.pgrp == pgid and p.state != "Z"]


def tree_rss_bytes(root: int) -> int:
    """Resident memory of a process and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for process in _processes():
        children.setdefault(process.ppid, []).append(process.pid)
    total, pending = 0, [root]
    while pending:
        pid = pending.pop()
        pending.extend(children.get(pid, ()))
        total += _rss_bytes(pid)
    return total


def _rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class PeakRss:
    """Samples tree_rss_bytes(pid) in a background thread while the block runs."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self._pid = pid
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self.peak_bytes = 0

    def __enter__(self) -> "PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while True:
            self.peak_bytes = max(self.peak_bytes, tree_rss_bytes(self._pid))
            if self._stop.wait(self._interval):
                return
