"""The one ASGI ↔ core seam: an ASGI request becomes an :class:`OAuthRequest`, an
:class:`OAuthResponse` becomes ASGI messages (or, for what Starlette answers, a Starlette
response), and any exception becomes a response through the one renderer.

Query strings are decoded strictly: percent-encoded bytes that are not UTF-8 (and raw bytes
outside ASCII, which RFC 3986 §2 does not allow in a URI) are ``invalid_request``, never
silently replaced with U+FFFD.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from starlette.responses import Response

from oauth_server.addresses import TrustedProxies
from oauth_server.errors import (
    InvalidRequest,
    RequestTooLarge,
    ServerError,
    ServiceError,
    TemporarilyUnavailable,
)
from oauth_server.oauth.http import Headers, OAuthRequest, OAuthResponse, render_error
from oauth_server.oauth.params import split_urlencoded
from oauth_server.storage.errors import is_unavailable

__all__ = [
    "HTML_HEADERS",
    "ClientDisconnected",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "error_response",
    "parse_query_string",
    "read_request",
    "security_headers",
    "send_response",
    "to_starlette",
]

log = logging.getLogger("oauth_server.web")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_NO_QUERY: tuple[str, tuple[tuple[str, str], ...]] = ("", ())


class ClientDisconnected(Exception):
    """The client went away before its request body arrived."""


def error_response(
    exc: BaseException, method: str, path: str, *, request_id: str | None = None
) -> OAuthResponse:
    """The one translation of an exception into a response; ``request_id`` names the
    request in the log line of an unexpected error (one is made up when not given)."""
    if isinstance(exc, ServiceError):
        if exc.status_code >= 500:
            log.warning("%s %s: %s (%s)", method, path, exc.error, exc.detail)
        return render_error(exc)
    request_id = request_id or secrets.token_hex(8)
    if is_unavailable(exc):
        log.error("storage unavailable [request %s]: %s", request_id, exc)
        return render_error(TemporarilyUnavailable(detail=request_id))
    log.exception("unexpected error [request %s] on %s %s", request_id, method, path)
    return render_error(ServerError(f"internal error; request id {request_id}"))


def parse_query_string(raw: bytes) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The query string as text and as decoded ``(name, value)`` pairs, strictly UTF-8."""
    if not raw:
        return "", ()
    try:
        text = raw.decode("ascii")
        return text, tuple(split_urlencoded(text))
    except UnicodeDecodeError:
        raise InvalidRequest("the query string is not valid percent-encoded UTF-8") from None


async def read_request(
    scope: Scope,
    receive: Receive,
    method: str,
    path: str,
    *,
    max_body: int,
    proxies: TrustedProxies | None,
) -> OAuthRequest:
    """Build the core's view of an ASGI HTTP request (the body read within its cap)."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        # Lower-case names (ASGI guarantees it); a repeated header is joined (RFC 9110 §5.3)
        # so that a doubled Authorization fails to parse instead of half-applying.
        name = raw_name.decode("latin-1")
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    raw_query: bytes = scope["query_string"]
    query_string, query = parse_query_string(raw_query) if raw_query else _NO_QUERY
    body = await _body(receive, headers, max_body) if method in _BODY_METHODS else b""
    client = scope.get("client")
    address = client[0] if client else ""
    if proxies is not None:
        address = _forwarded(proxies, scope, headers, address)
    return OAuthRequest(
        method=method,
        path=path,
        headers=headers,
        query=query,
        body=body,
        client_ip=address,
        query_string=query_string,
    )


async def _body(receive: Receive, headers: Mapping[str, str], limit: int) -> bytes:
    declared = headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise InvalidRequest("invalid Content-Length")
        if int(declared) > limit:
            raise RequestTooLarge(f"the request body exceeds {limit} bytes")
    # No deadline here: the server's protocol enforces OAUTH_SERVER_BODY_TIMEOUT
    # (oauth_server.web.protocol), far cheaper than a timeout around every receive().
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RequestTooLarge(f"the request body exceeds {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _forwarded(proxies: TrustedProxies, scope: Scope, headers: Mapping[str, str], peer: str) -> str:
    """The client behind a trusted proxy (RFC 9700 §4.13: believed only from one). The scope is
    updated as uvicorn's own proxy support would, for its access log."""
    address = proxies.client_address(peer, headers.get("x-forwarded-for"))
    if address != peer:
        scope["client"] = (address, 0)
    proto = headers.get("x-forwarded-proto")
    if proto in ("http", "https") and proxies.trusts(peer):
        scope["scheme"] = proto
    return address


_ENCODED: dict[tuple[str, str], tuple[bytes, bytes]] = {}


def _encode(name: str, value: str) -> tuple[bytes, bytes]:
    # Responses repeat a handful of header lines; encode each once (bounded: only short
    # values, which is what the constant ones are).
    pair = _ENCODED.get((name, value))
    if pair is None:
        pair = (name.lower().encode("latin-1"), value.encode("latin-1"))
        if len(value) <= 64 and len(_ENCODED) < 256:
            _ENCODED[(name, value)] = pair
    return pair


# Pages a browser renders (the docs) also forbid framing (clickjacking, RFC 9700 §4.16) and
# referrer leaks; JSON responses are never rendered, so they carry only the headers below.
HTML_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}


def security_headers(*, hsts: bool) -> list[tuple[bytes, bytes]]:
    """Headers on every response: no MIME sniffing; HSTS when the public issuer is https."""
    headers = [(b"x-content-type-options", b"nosniff")]
    if hsts:
        headers.append((b"strict-transport-security", b"max-age=63072000; includeSubDomains"))
    return headers


# Encoded header blocks (the response's lines, then the security headers) by the identity of
# the Headers object: the hot responses share constant ones, so encoding them is one lookup.
# Both objects are kept in the entry and compared by identity, so an id reused after a
# transient object died can never match; the table is bounded.
_BLOCKS: dict[int, tuple[Headers, list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]] = {}
_MAX_BLOCKS = 256


def encode_headers(
    response: OAuthResponse, extra: list[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """The response's header lines as ASGI wants them, then ``extra``, then Content-Length."""
    lines = response.headers
    entry = _BLOCKS.get(id(lines))
    if entry is not None and entry[0] is lines and entry[1] is extra:
        headers = entry[2].copy()
    else:
        block = [_encode(name, value) for name, value in lines]
        block += extra
        if len(_BLOCKS) < _MAX_BLOCKS:
            _BLOCKS[id(lines)] = (lines, extra, block)
        headers = block.copy()
    headers.append((b"content-length", str(len(response.body)).encode("latin-1")))
    return headers


async def send_response(
    send: Send,
    response: OAuthResponse,
    extra: list[tuple[bytes, bytes]],
    *,
    head: bool,
    request_id: bytes | None = None,
) -> None:
    """Write ``response`` as the two ASGI messages (no body for HEAD), with the request's
    ``X-Request-ID``."""
    headers = encode_headers(response, extra)
    if request_id is not None:
        headers.append((b"x-request-id", request_id))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else response.body})


def to_starlette(response: OAuthResponse, extra: list[tuple[bytes, bytes]]) -> Response:
    """The same response for what Starlette answers itself (unknown paths, last resort)."""
    out = Response(response.body, status_code=response.status)
    out.raw_headers = encode_headers(response, extra)
    return out
