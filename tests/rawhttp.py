"""Raw HTTP/1.1 over a socket, for tests of the HTTP layer itself: the bytes no HTTP client
sends (unterminated fields, bodies that never come), read back as the server wrote them."""

from __future__ import annotations

import json
import select
import socket
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["RawResponse", "at_eof", "connect", "has_data", "read_response", "refused"]


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    """Lower-case names; a repeated header keeps its last value."""
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def connect(port: int, *, timeout: float = 5.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def read_response(sock: socket.socket, *, within: float = 5.0) -> RawResponse:
    """Read one response framed by ``Content-Length`` (every answer this server sends is), or
    fail if it is not complete within ``within`` seconds or the connection ends first."""
    deadline = time.monotonic() + within
    buffer = b""

    def more() -> None:
        nonlocal buffer
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no complete response within {within} s: {buffer[:200]!r}")
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            raise AssertionError(
                f"no complete response within {within} s: {buffer[:200]!r}"
            ) from None
        if not chunk:
            raise AssertionError(f"connection ended before a complete response: {buffer[:200]!r}")
        buffer += chunk

    while b"\r\n\r\n" not in buffer:
        more()
    head, _, buffer = buffer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(buffer) < length:
        more()
    return RawResponse(int(status_line.split(" ", 2)[1]), headers, buffer[:length])


def has_data(sock: socket.socket) -> bool:
    """Whether something (data or the end of the stream) can be read now, without waiting."""
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


def at_eof(sock: socket.socket, *, within: float = 5.0) -> bool:
    """Whether the server ends its side of the stream (nothing more to read) within ``within``
    seconds; data instead of the end counts as not."""
    sock.settimeout(within)
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def refused(sock: socket.socket, data: bytes = b"a") -> bool:
    """Send ``data`` once; whether the server has closed the connection for good.

    Reading cannot tell: after a half-close it reads as ended while the server still accepts
    bytes. Once the server has fully closed, its TCP stack resets the connection when bytes
    arrive, and a later send fails — so call this repeatedly, as a poll.
    """
    try:
        sock.sendall(data)
    except OSError:  # BrokenPipeError, ConnectionResetError
        return True
    return False
