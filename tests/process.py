"""Running real ``oauth-server serve`` processes for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

CLI = str(Path(sys.executable).with_name("oauth-server"))

current_test_is_slow: bool | None = None
"""Whether the running test is marked ``slow`` (set by tests/conftest.py before each test's
setup; ``None`` outside pytest): a test that starts a server process must be, so that
``make test-fast`` (``-m "not slow"``) leaves it out."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """One server process; ``start`` waits until it answers ``/healthz``."""

    def __init__(self, env: Mapping[str, str], *, port: int | None = None, log: Path) -> None:
        self.port = port or free_port()
        self.env = {**os.environ, **env, "OAUTH_SERVER_PORT": str(self.port)}
        self.log_path = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> ServerProcess:
        if current_test_is_slow is False:
            raise RuntimeError("a test that starts a server process must be marked slow")
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [CLI, "serve"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start:\n{self.log_path.read_text()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        os.killpg(self.process.pid, sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait(timeout)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")
