"""The answers the HTTP layer gives by itself, through raw sockets against real server
processes: their security headers, the connection cap's 503, and SIGTERM's grace period."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from tests.helpers import eventually
from tests.process import ServerProcess
from tests.rawhttp import at_eof, connect, has_data, read_response, refused

pytestmark = pytest.mark.slow

HSTS = "max-age=63072000; includeSubDomains"


def start(tmp: Path, **env: str) -> ServerProcess:
    process = ServerProcess(
        {
            "OAUTH_SERVER_DATABASE_URL": f"sqlite:///{tmp}/oauth.db",
            "OAUTH_SERVER_SECRET_KEY": "http-layer-test-secret-0123456789abcdef",
            **{f"OAUTH_SERVER_{name.upper()}": value for name, value in env.items()},
        },
        log=tmp / "server.log",
    )
    return process.start()


@pytest.fixture(scope="module")
def https_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start(
        tmp_path_factory.mktemp("https"),
        issuer="https://auth.example",
        header_timeout="1",
        keep_alive_timeout="1",
    )
    try:
        yield server
    finally:
        server.stop()


HEAD = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"


@pytest.mark.parametrize(
    ("sent", "status"),
    [
        (b"GET /healthz?q=" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (HEAD + b"".join(b"X-H%d: v\r\n" % i for i in range(120)) + b"\r\n", 431),
        (HEAD + b"X-Big: " + b"a" * 65_536, 431),  # a field that never ends
        (b"NOT HTTP\r\n\r\n", 400),
        (b"", 408),  # nothing at all: the head deadline
        (b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", 404),  # Starlette's fallback, not a route
        (
            b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n",
            413,
        ),
        (HEAD + b"\r\n", 200),
    ],
    ids=["414", "431-count", "431-unterminated", "400", "408", "404", "413", "200"],
)
def test_every_answer_carries_nosniff_and_hsts(
    https_server: ServerProcess, sent: bytes, status: int
) -> None:
    """The protocol's own refusals and the unknown-path 404 carry the same security headers
    as the routes' answers: nosniff always, HSTS under an https issuer (issue 12, claim 4)."""
    with connect(https_server.port) as sock:
        sock.sendall(sent)
        answer = read_response(sock)
    assert answer.status == status
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["strict-transport-security"] == HSTS
    assert answer.headers["content-type"] == "application/json"
    assert "server" not in answer.headers


async def test_the_connection_cap_answers_503_and_recovers(tmp_path: Path) -> None:
    """With OAUTH_SERVER_MAX_CONNECTIONS=3, three open connections are served; a fourth gets a
    JSON 503 with ``Retry-After`` and the security headers, and is closed; once one of the
    three closes, new connections are served again (issue 13, item 3)."""
    server = start(
        tmp_path,
        issuer="https://auth.example",
        max_connections="3",
        header_timeout="30",
        keep_alive_timeout="60",
    )
    try:
        with ExitStack() as stack:
            held = [stack.enter_context(connect(server.port)) for _ in range(3)]
            for sock in held:  # each one served, so each one is counted
                sock.sendall(HEAD + b"\r\n")
                assert read_response(sock).status == 200

            with connect(server.port) as extra:
                extra.sendall(HEAD + b"\r\n")
                answer = read_response(extra)
                assert answer.status == 503
                assert answer.json()["error"] == "temporarily_unavailable"
                assert answer.headers["content-type"] == "application/json"
                assert answer.headers["x-content-type-options"] == "nosniff"
                assert answer.headers["strict-transport-security"] == HSTS
                assert answer.headers["retry-after"] == "1"
                assert at_eof(extra)

            held.pop().close()

            async def served_again() -> bool:
                try:  # a new connection each time
                    async with httpx.AsyncClient(base_url=server.url, timeout=2) as fresh:
                        return (await fresh.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(served_again, within=10)
            for sock in held:  # the ones held all along were never disturbed
                sock.sendall(HEAD + b"\r\n")
                assert read_response(sock).status == 200
    finally:
        server.stop()


async def test_sigterm_cuts_a_request_that_outlives_the_grace(tmp_path: Path) -> None:
    """A request still in flight when OAUTH_SERVER_SHUTDOWN_TIMEOUT (here 1 s) is over — its
    body trickled a byte at a time, which resets no deadline — is answered 503 (JSON, never
    uvicorn's plain-text 500) and closed, and the process exits soon after (issue 13, item 3)."""
    server = start(tmp_path, shutdown_timeout="1", body_timeout="120")
    try:
        with connect(server.port) as sock:
            sock.sendall(
                b"POST /oauth/token HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\n"
                b"Content-Length: 200\r\nExpect: 100-continue\r\n\r\n"
            )
            # 100 Continue is written when the app asks for the body: the request is in flight.
            assert read_response(sock).status == 100
            sock.sendall(b"grant_type=")
            assert server.process is not None
            os.killpg(server.process.pid, signal.SIGTERM)

            async def answered() -> bool:
                refused(sock)  # one more byte of the body
                return has_data(sock)

            await eventually(answered, within=10, interval=0.1)
            answer = read_response(sock)
            assert answer.status == 503
            assert answer.json()["error"] == "temporarily_unavailable"
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert at_eof(sock)
        returncode = await asyncio.to_thread(server.process.wait, 10)
        assert returncode in (0, -signal.SIGTERM)
        output = server.output()
        assert "Application shutdown complete" in output
        assert "Traceback" not in output
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
    finally:
        server.stop()
