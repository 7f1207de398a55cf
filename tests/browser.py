"""Browser-test helpers: Debian's Chromium (never a downloaded one), the flags it runs with,
where screenshots go, a server process on SQLite, the CLI against it, and an app's callback
(a tiny HTTP server on a loopback redirect URI, as a native app registers, RFC 8252 §7.3)."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

from tests.process import CLI, ServerProcess

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parent / "artifacts" / "screenshots"
SECRET = "test-secret-key-of-at-least-32-characters"


class _App(BaseHTTPRequestHandler):
    landed: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        if self.path.startswith("/callback"):  # not the browser's /favicon.ico
            self.landed.append(self.path)
        body = b"<!doctype html><title>Menu Planner</title><h1>Back in Menu Planner</h1>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def app_callback() -> Iterator[tuple[str, list[str]]]:
    """The callback URL and the list of paths the browser was sent to there."""
    landed: list[str] = []
    handler = type("Handler", (_App,), {"landed": landed})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/callback", landed
    finally:
        httpd.shutdown()
        httpd.server_close()


@contextmanager
def sqlite_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A started server process on a fresh SQLite file (cheapest password hashing)."""
    env = {
        "OAUTH_SERVER_DATABASE_URL": f"sqlite:///{tmp_path}/oauth.db",
        "OAUTH_SERVER_ENV": "development",
        "OAUTH_SERVER_SECRET_KEY": SECRET,
        "OAUTH_SERVER_PASSWORD_HASH_TIME_COST": "1",
        "OAUTH_SERVER_PASSWORD_HASH_MEMORY_COST": "8",
    }
    process = ServerProcess(env, log=tmp_path / "server.log")
    try:
        yield process.start()
    finally:
        process.stop()


def cli(server: ServerProcess, *args: str, stdin: str = "") -> str:
    """Run ``oauth-server ARGS`` against the server's database; its standard output."""
    result = subprocess.run(
        [CLI, *args], env=server.env, input=stdin, capture_output=True, text=True, check=True
    )
    return result.stdout
