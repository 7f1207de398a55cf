"""uvicorn's httptools protocol with the limits a public server needs and uvicorn lacks.

uvicorn bounds neither the request line nor the header block (the parser appends every header
it is fed), and it has no deadline for a request's headers: a client that trickles a byte at a
time holds its connection for ever (slowloris). This subclass adds, per request:

* the request target at most ``max_url_bytes`` — else 414;
* at most ``max_headers`` header fields and ``max_header_bytes`` of them — else 431 (RFC 6585);
* the whole head within ``header_timeout`` seconds of the connection opening or the request's
  first byte — else 408 and the connection closes;
* the whole body within ``body_timeout`` seconds of the head — else 408 and the connection
  closes. (Kept here rather than around the app's ``receive()``: an ``asyncio.timeout`` per
  request cost about a tenth of the introspection endpoint's time.)

It is selected with ``uvicorn.run(http=BoundedHttpToolsProtocol)``; each worker process sets
:attr:`BoundedHttpToolsProtocol.limits` from its settings when it builds the app.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["BoundedHttpToolsProtocol", "HttpLimits"]

_REASONS = {408: b"Request Timeout", 414: b"URI Too Long", 431: b"Request Header Fields Too Large"}


@dataclass(frozen=True, slots=True)
class HttpLimits:
    max_url_bytes: int = 8192
    max_header_bytes: int = 16_384
    max_headers: int = 100
    header_timeout: float = 10.0
    body_timeout: float = 15.0


class _Refused(Exception):
    """Raised inside a parser callback; the parser wraps it and uvicorn calls
    :meth:`BoundedHttpToolsProtocol.send_400_response`, which sends ours instead."""


class _CoalescingTransport:
    """Joins the writes made in one event-loop turn into one ``write``.

    uvicorn writes a response's head and its body separately, two system calls for every
    response; the router sends both in the same turn, so buffering until the turn ends makes
    it one. Everything else goes straight to the real transport (``close`` flushes first).
    """

    __slots__ = ("_buffer", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._buffer: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._buffer:
            self._loop.call_soon(self._flush)
        self._buffer.append(data)

    def _flush(self) -> None:
        if self._buffer:
            data = b"".join(self._buffer)
            self._buffer.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    limits: ClassVar[HttpLimits] = HttpLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._url_bytes = 0
        self._header_bytes = 0
        self._header_count = 0
        self._refusal: tuple[int, str] | None = None
        self._head_deadline: asyncio.TimerHandle | None = None
        self._body_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = _CoalescingTransport(transport, self.loop)  # type: ignore[assignment]
        self._arm_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_deadline()
        self._disarm_body_deadline()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._url_bytes = self._header_bytes = self._header_count = 0
        self._arm_deadline()

    def on_url(self, url: bytes) -> None:
        self._url_bytes += len(url)
        if self._url_bytes > self.limits.max_url_bytes:
            self._refuse(414, "the request target is too long")
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        self._header_bytes += len(name) + len(value)
        if self._header_count > self.limits.max_headers:
            self._refuse(431, "too many header fields")
        if self._header_bytes > self.limits.max_header_bytes:
            self._refuse(431, "the header fields are too large")
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm_deadline()
        super().on_headers_complete()
        if self._expects_body():
            self._body_deadline = self.loop.call_later(
                self.limits.body_timeout, self._body_timed_out
            )

    def on_message_complete(self) -> None:
        self._disarm_body_deadline()
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        if self._refusal is None:
            super().send_400_response(msg)
            return
        status, description = self._refusal
        self._send_refusal(status, description)

    def _refuse(self, status: int, description: str) -> None:
        self._refusal = (status, description)
        raise _Refused(description)

    def _send_refusal(self, status: int, description: str) -> None:
        body = orjson.dumps({"error": "invalid_request", "error_description": description})
        head = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status])]
        for name, value in self.server_state.default_headers:
            head.append(name + b": " + value + b"\r\n")
        head.append(b"content-type: application/json\r\n")
        head.append(b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body))
        self.transport.write(b"".join(head) + body)
        self.transport.close()

    def _arm_deadline(self) -> None:
        if self._head_deadline is None:
            self._head_deadline = self.loop.call_later(
                self.limits.header_timeout, self._head_timed_out
            )

    def _disarm_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _expects_body(self) -> bool:
        for name, value in self.headers:
            if name == b"content-length":
                return value.strip() not in (b"0", b"")
            if name == b"transfer-encoding":
                return True
        return False

    def _disarm_body_deadline(self) -> None:
        if self._body_deadline is not None:
            self._body_deadline.cancel()
            self._body_deadline = None

    def _body_timed_out(self) -> None:
        self._body_deadline = None
        if self.transport.is_closing() or self.cycle is None or self.cycle.response_started:
            return
        # The app is still waiting for the body: answer for it, and drop the connection (the
        # app's own answer, if any, goes nowhere once the connection is closed).
        self.cycle.disconnected = True
        self._send_refusal(408, "the request body arrived too slowly")

    def _head_timed_out(self) -> None:
        self._head_deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being served; its own deadlines apply
        self._send_refusal(408, "the request headers took too long")
