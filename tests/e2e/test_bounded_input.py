"""Bounded input at the HTTP layer of a real server: request target, header block, slow
clients (slowloris), slow bodies, connections answered before their body arrived. Only a real
uvicorn process has these layers."""

from __future__ import annotations

import json
import select
import socket
from collections.abc import Iterator

import httpx
import pytest

from tests.helpers import eventually
from tests.process import ServerProcess
from tests.rawhttp import at_eof, connect, read_response, refused

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("bounded")
    process = ServerProcess(
        {
            "OAUTH_SERVER_DATABASE_URL": f"sqlite:///{tmp}/oauth.db",
            "OAUTH_SERVER_SECRET_KEY": "bounded-input-test-secret-0123456789",
            "OAUTH_SERVER_HEADER_TIMEOUT": "1",
            "OAUTH_SERVER_BODY_TIMEOUT": "1",
            "OAUTH_SERVER_KEEP_ALIVE_TIMEOUT": "1",
        },
        log=tmp / "server.log",
    )
    try:
        yield process.start()
    finally:
        process.stop()


def raw_exchange(server: ServerProcess, payload: bytes) -> bytes:
    """Send raw bytes and read until the server closes or 5 s pass."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(payload)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            pass
        return b"".join(chunks)


def status_and_body(raw: bytes) -> tuple[int, dict[str, str]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


def test_overlong_request_target_is_414(server: ServerProcess) -> None:
    response = httpx.get(f"{server.url}/restaurent?x={'a' * 9000}")
    assert response.status_code == 414
    assert response.json()["error"] == "invalid_request"


def test_too_many_headers_is_431(server: ServerProcess) -> None:
    headers = {f"x-h{i}": "v" for i in range(120)}
    response = httpx.get(f"{server.url}/healthz", headers=headers)
    assert response.status_code == 431


def test_oversized_header_block_is_431(server: ServerProcess) -> None:
    response = httpx.get(f"{server.url}/healthz", headers={"x-big": "a" * 17_000})
    assert response.status_code == 431


def test_normal_requests_are_untouched(server: ServerProcess) -> None:
    headers = {f"x-h{i}": "v" * 100 for i in range(50)}
    assert httpx.get(f"{server.url}/healthz", headers=headers).status_code == 200


def test_slowloris_head_is_cut_off_while_others_are_served(server: ServerProcess) -> None:
    """The head deadline is 1 s here: the slow client is not cut off before it (nothing comes
    back for a while), others are served meanwhile, and it gets its 408 well within 4 s — the
    read's own bound, so a server that kept waiting fails the test."""
    with connect(server.port) as slow:
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finishes the head
        assert not select.select([slow], [], [], 0.3)[0], "cut off before its head deadline"
        assert httpx.get(f"{server.url}/healthz").status_code == 200  # not starved
        assert read_response(slow, within=4).status == 408
        assert at_eof(slow)  # closed


def test_idle_connection_is_closed(server: ServerProcess) -> None:
    """A connection that sends nothing gets its 408 and is closed within 4 s (the read's own
    bound: a server that kept it open fails the test)."""
    with connect(server.port) as idle:
        assert read_response(idle, within=4).status == 408
        assert at_eof(idle)


def test_slow_body_is_408(server: ServerProcess) -> None:
    head = (
        b"POST /oauth/token HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n"
        b"grant_type="
    )
    status, body = status_and_body(raw_exchange(server, head))
    assert status == 408
    assert body["error"] == "invalid_request"


def test_declared_oversized_body_is_413_without_reading_it(server: ServerProcess) -> None:
    head = (
        b"POST /oauth/token HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 999999999\r\n\r\n"
    )
    status, _ = status_and_body(raw_exchange(server, head))
    assert status == 413


def test_security_headers_on_real_responses(server: ServerProcess) -> None:
    response = httpx.get(f"{server.url}/restaurent")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "strict-transport-security" not in response.headers  # http issuer
    assert "server" not in response.headers


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 65_536, 431),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-" + b"a" * 65_536, 431),  # the name
        (b"GET /healthz?" + b"a" * 65_536, 414),  # the request line
    ],
    ids=["field-value", "field-name", "request-target"],
)
def test_unterminated_head_is_refused_at_once(
    server: ServerProcess, head: bytes, status: int
) -> None:
    """A head that never ends (no CRLF) is refused as soon as it outgrows the caps — not
    accepted until the head deadline while the parser appends to the open field (issue 8,
    finding 1)."""
    with connect(server.port) as sock:
        sock.sendall(head)
        answer = read_response(sock)
        assert answer.status == status  # not 408 when the (1 s) head deadline is over
        assert answer.json()["error"] == "invalid_request"
        assert at_eof(sock)  # no keep-alive after a refusal
    assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_a_head_just_within_every_cap_is_served(server: ServerProcess) -> None:
    """The raw-byte count leaves room for a head at the URL and header caps together."""
    target = b"/healthz?q=" + b"a" * (8192 - 11)
    fields = b"".join(b"X-F%02d: %s\r\n" % (i, b"v" * 160) for i in range(98))  # 16,268 B
    with connect(server.port) as sock:
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n")
        assert read_response(sock).status == 200


@pytest.mark.parametrize(
    "head",
    [
        # 413 for a declared oversized body, answered before any of it arrives
        b"POST /oauth/token HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 10000000\r\n\r\n",
        # a route that never reads its body
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 10000\r\n\r\n",
    ],
    ids=["413", "ignored-body"],
)
async def test_a_connection_answered_before_its_body_ends(
    server: ServerProcess, head: bytes
) -> None:
    """After an answer that left the body unread, trickling that body does not keep the
    connection: the server half-closes at once and closes within the keep-alive timeout (1 s)
    however the client trickles (issue 8, finding 2)."""
    with connect(server.port) as sock:
        sock.sendall(head)
        assert read_response(sock).status in (413, 200)

        async def closed() -> bool:
            return refused(sock)  # one more byte of the body each time

        await eventually(closed, within=10, interval=0.2)


async def test_bytes_between_requests_do_not_hold_a_connection(server: ServerProcess) -> None:
    """Bare CRLFs after a response start no request, and used to cancel the keep-alive timer
    each time; the head deadline now runs from the first of them."""
    with connect(server.port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock).status == 200

        async def closed() -> bool:
            return refused(sock, b"\r\n")

        await eventually(closed, within=10, interval=0.2)


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"NOT HTTP AT ALL\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    ],
    ids=["request-line", "header-name", "two-lengths"],
)
def test_malformed_requests_get_the_json_error_shape(
    server: ServerProcess, request_bytes: bytes
) -> None:
    with connect(server.port) as sock:
        sock.sendall(request_bytes)
        answer = read_response(sock)
        assert answer.status == 400
        assert answer.headers["content-type"] == "application/json"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.json() == {
            "error": "invalid_request",
            "error_description": "malformed HTTP request",
        }
        assert at_eof(sock)
