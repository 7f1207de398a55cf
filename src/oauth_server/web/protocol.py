"""uvicorn's httptools protocol with the limits a public server needs and uvicorn lacks.

uvicorn bounds neither the request line nor the header block (the parser appends every header
it is fed), it has no deadline for a request's headers (a client that trickles a byte at a time
holds its connection for ever: slowloris), and a connection answered before its request body
arrived stays open for as long as the client trickles that body. This subclass adds:

* the request target at most ``max_url_bytes`` — else 414;
* at most ``max_headers`` header fields and ``max_header_bytes`` of them — else 431 (RFC 6585);
  the raw bytes of the head are counted as they arrive, so a field that never ends (no CRLF,
  which the parser would keep appending to) is refused as soon as the head outgrows what those
  caps allow;
* the whole head within ``header_timeout`` seconds of the connection opening or of the first
  byte after the previous request — else 408 and the connection closes;
* the whole body within ``body_timeout`` seconds of the head — else 408 and the connection
  closes. (Kept here rather than around the app's ``receive()``: an ``asyncio.timeout`` per
  request cost about a tenth of the introspection endpoint's time.)
* a request answered before its body arrived (413 for a declared oversized body, a route that
  ignores its body) ends its connection: no keep-alive; what the client still sends is dropped
  unparsed for at most the keep-alive timeout, then the connection closes (lingering close);
* the connection cap answers 503 for requests beyond ``limit_concurrency`` connections;
* on shutdown, a request still in flight after ``shutdown_timeout`` is answered 503 and closed.

Every answer the protocol writes itself (414, 431, 408, a malformed request's 400, 503) has the
JSON error shape of :func:`oauth_server.oauth.http.render_error` and the app's security headers.
So every phase that waits on the client has a deadline that bytes from the client do not reset.

It is selected with ``uvicorn.run(http=BoundedHttpToolsProtocol)``; each worker process sets
:attr:`BoundedHttpToolsProtocol.limits` from its settings when it builds the app.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar

from uvicorn._types import ASGIReceiveCallable, ASGISendCallable, Scope
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from oauth_server.errors import InvalidRequest, ServiceError, TemporarilyUnavailable
from oauth_server.oauth.http import render_error
from oauth_server.web.adapters import security_headers

__all__ = ["BoundedHttpToolsProtocol", "HttpLimits"]

Headers = tuple[tuple[bytes, bytes], ...]


@dataclass(frozen=True, slots=True)
class HttpLimits:
    max_url_bytes: int = 8192
    max_header_bytes: int = 16_384
    max_headers: int = 100
    header_timeout: float = 10.0
    body_timeout: float = 15.0
    shutdown_timeout: float = 15.0
    hsts: bool = False
    """Send HSTS on the protocol's own answers too (the public issuer is https)."""

    @property
    def max_head_bytes(self) -> int:
        """The most raw bytes a head within the caps can take: the request line (method, target,
        version, CRLF), each field line's ``": "`` and CRLF, the final CRLF — with slack."""
        return self.max_url_bytes + self.max_header_bytes + 4 * self.max_headers + 64


@lru_cache(maxsize=32)
def _refusal(status: int, description: str, hsts: bool) -> tuple[Headers, bytes]:
    """Headers and body of an answer the protocol writes itself, rendered like the app's."""
    error: ServiceError = (
        TemporarilyUnavailable(description, retry_after=1)
        if status == 503
        else InvalidRequest(description)
    )
    response = render_error(error)
    headers = [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in response.headers.items()
    ]
    headers += security_headers(hsts=hsts)
    headers += [(b"content-length", b"%d" % len(response.body)), (b"connection", b"close")]
    return tuple(headers), response.body


class _Refused(Exception):
    """Raised inside a parser callback; the parser wraps it and uvicorn calls
    :meth:`BoundedHttpToolsProtocol.send_400_response`, which sends ours instead."""


class _CoalescingTransport:
    """Joins the writes made in one event-loop turn into one ``write``.

    uvicorn writes a response's head and its body separately, two system calls for every
    response; the router sends both in the same turn, so buffering until the turn ends makes
    it one. Everything else goes straight to the real transport (``close`` and ``write_eof``
    flush first).
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

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    limits: ClassVar[HttpLimits] = HttpLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._max_head_bytes = self.limits.max_head_bytes
        self._in_head = True  # between one request's headers and the next's (or idle)
        self._head_bytes = 0
        self._url_bytes = 0
        self._header_bytes = 0
        self._header_count = 0
        self._closing = False  # answered for good: input is dropped, the connection ends
        self._refusal: tuple[int, str] | None = None
        self._head_deadline: asyncio.TimerHandle | None = None
        self._body_deadline: asyncio.TimerHandle | None = None
        self._close_deadline: asyncio.TimerHandle | None = None
        # The connection cap is checked here (uvicorn's own check answers in plain text, and
        # counts the connection asking, so it served one connection fewer than the cap).
        self._max_connections = self.limit_concurrency
        self.limit_concurrency = None
        self._app = self.app

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = _CoalescingTransport(transport, self.loop)  # type: ignore[assignment]
        self._arm_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_deadline()
        self._disarm_body_deadline()
        if self._close_deadline is not None:
            self._close_deadline.cancel()
            self._close_deadline = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return  # the last answer is out; what still arrives is dropped unparsed
        if not self._in_head:
            super().data_received(data)
            return
        # Counted before the parser sees them: it reports a header field only once the field
        # ends, and keeps appending to one that never does.
        if self._head_deadline is None:
            self._arm_deadline()  # bytes between requests (even bare CRLFs) start the clock
        self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._head_bytes > self._max_head_bytes and not self._closing:
            self._refuse_now(431, "the request head is too large")

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
        self._in_head = False
        self._head_bytes = 0
        limit = self._max_connections
        # This connection is one of ``connections``; the request's task is not yet in ``tasks``.
        if limit is not None and (len(self.connections) > limit or len(self.tasks) >= limit):
            self.logger.warning("Connection limit of %d reached: answering 503.", limit)
            self.app = self._over_capacity
            try:
                super().on_headers_complete()
            finally:
                self.app = self._app
        else:
            super().on_headers_complete()
        if self._expects_body():
            self._body_deadline = self.loop.call_later(
                self.limits.body_timeout, self._body_timed_out
            )

    def on_message_complete(self) -> None:
        self._in_head = True
        self._disarm_body_deadline()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        cycle = self.cycle
        if cycle.more_body and cycle.response_complete and not self.transport.is_closing():
            # Answered before its body arrived (413 on a declared length, a route that ignores
            # its body): parsing on would read the rest of a body nobody wants, at the client's
            # pace, and nothing would bound it. End the connection instead.
            self.server_state.total_requests += 1
            self._linger()
            return
        super().on_response_complete()

    def shutdown(self) -> None:
        super().shutdown()  # closes idle connections; the others close after their answer
        if not self.transport.is_closing() and self._close_deadline is None:
            self._close_deadline = self.loop.call_later(
                self.limits.shutdown_timeout, self._shutdown_timed_out
            )

    def send_400_response(self, msg: str) -> None:
        # The parser refused the bytes: one of our caps (``_refuse``) or malformed HTTP.
        status, description = self._refusal or (400, "malformed HTTP request")
        self._refuse_now(status, description)

    def _refuse(self, status: int, description: str) -> None:
        self._refusal = (status, description)
        raise _Refused(description)

    def _refuse_now(self, status: int, description: str) -> None:
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            if self._in_head:
                # A pipelined request's head, while the previous request is served: answer
                # that one, then close (an answer now would cut into it).
                cycle.keep_alive = False
                self._closing = True
                return
            # The body of the request being served is malformed.
            if cycle.response_started:
                self._closing = True
                self.transport.close()
                return
            cycle.disconnected = True  # we answer for the app; its answer goes nowhere
            cycle.message_event.set()
        self._send_refusal(status, description, linger=True)

    def _send_refusal(self, status: int, description: str, *, linger: bool) -> None:
        headers, body = _refusal(status, description, self.limits.hsts)
        head = [STATUS_LINE[status]]
        for name, value in (*self.server_state.default_headers, *headers):
            head.append(name + b": " + value + b"\r\n")
        head.append(b"\r\n")
        self.transport.write(b"".join(head) + body)
        if linger:
            self._linger()
        else:
            self._closing = True
            self.transport.close()

    async def _over_capacity(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        headers, body = _refusal(503, "too many connections; retry later", self.limits.hsts)
        await send({"type": "http.response.start", "status": 503, "headers": list(headers)})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    def _linger(self) -> None:
        """End the connection after the answer just written.

        RFC 9112 §9.6: "servers typically close a connection in stages. First, the server
        performs a half-close by closing only the write side of the read/write connection. The
        server then continues to read from the connection until it receives a corresponding
        close by the client, or until the server is reasonably certain that its own TCP stack
        has received the client's acknowledgement" — a close with unread input would send a
        reset that can erase the answer before the client reads it. Input is dropped unparsed
        meanwhile, for at most the keep-alive timeout.
        """
        self._closing = True
        self._disarm_deadline()
        self._disarm_body_deadline()
        if self.transport.is_closing():
            return
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()
        self.flow.resume_reading()
        if self._close_deadline is not None:
            self._close_deadline.cancel()
        self._close_deadline = self.loop.call_later(self.timeout_keep_alive, self._close_now)

    def _close_now(self) -> None:
        self._close_deadline = None
        if not self.transport.is_closing():
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
        if self._closing or self.transport.is_closing() or self.cycle is None:
            return
        if self.cycle.response_started:
            # Answering already, without the whole body: the connection ends with the answer.
            self.cycle.keep_alive = False
            return
        # The app is still waiting for the body: answer for it, and drop the connection (the
        # app's own answer, if any, goes nowhere once the connection is closed).
        self.cycle.disconnected = True
        self._send_refusal(408, "the request body arrived too slowly", linger=False)

    def _head_timed_out(self) -> None:
        self._head_deadline = None
        if self._closing or self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined head is trickling in while the previous request is served: answer
            # that one, then close.
            self.cycle.keep_alive = False
            return
        self._send_refusal(408, "the request headers took too long", linger=False)

    def _shutdown_timed_out(self) -> None:
        """The shutdown grace is over and this connection's request is still in flight."""
        self._close_deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_started:
            self.cycle.disconnected = True  # the app's answer, if it ever comes, goes nowhere
            self._send_refusal(503, "the server is shutting down", linger=False)
        else:
            self._closing = True
            self.transport.close()
