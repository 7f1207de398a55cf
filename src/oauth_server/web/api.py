"""Route declaration with documentation in one place, and the HTTP ⇄ core adapters.

Each route is declared once with :meth:`Api.route`: the handler, its method and path, and what
OpenAPI says about it (pydantic models for bodies and responses, scopes). :meth:`Api.openapi`
builds the document from those declarations, so the docs cannot drift from the routes.

Handlers are Starlette endpoints wrapped by :func:`_guarded`, which is the one place where any
error becomes a response: :class:`ServiceError` through :func:`render_error`, storage outages as
503, anything else as a logged ``server_error`` with a request id — never a stack trace.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from oauth_server.errors import RequestTooLarge, ServerError, ServiceError, TemporarilyUnavailable
from oauth_server.oauth.http import OAuthRequest, OAuthResponse, render_error
from oauth_server.storage.errors import is_unavailable
from oauth_server.web.openapi import build_openapi

__all__ = ["Api", "Doc", "oauth_request", "read_body", "to_response"]

log = logging.getLogger("oauth_server.web")

Handler = Callable[[Request], Awaitable[Response]]


def to_response(response: OAuthResponse) -> Response:
    return Response(response.body, status_code=response.status, headers=response.headers)


def request_headers(request: Request) -> dict[str, str]:
    """Lower-case header names; repeated headers joined with ``", "`` (RFC 9110 §5.3)."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in request.scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing with 413 once it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise RequestTooLarge("invalid Content-Length")
        if int(declared) > limit:
            raise RequestTooLarge(f"the request body exceeds {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestTooLarge(f"the request body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def oauth_request(request: Request, *, body: bytes = b"") -> OAuthRequest:
    client = request.scope.get("client")
    return OAuthRequest(
        method=request.method,
        path=request.url.path,
        headers=request_headers(request),
        query=tuple(request.query_params.multi_items()),
        body=body,
        client_ip=client[0] if client else "",
    )


def error_response(exc: BaseException, request: Request) -> Response:
    """The one translation of an exception into a response."""
    if isinstance(exc, ServiceError):
        if exc.status_code >= 500:
            log.warning("%s %s: %s (%s)", request.method, request.url.path, exc.error, exc.detail)
        return to_response(render_error(exc))
    request_id = secrets.token_hex(8)
    if is_unavailable(exc):
        log.error("storage unavailable [request %s]: %s", request_id, exc)
        return to_response(render_error(TemporarilyUnavailable(detail=request_id)))
    log.exception(
        "unexpected error [request %s] on %s %s", request_id, request.method, request.url.path
    )
    return to_response(render_error(ServerError(f"internal error; request id {request_id}")))


def _guarded(handler: Handler) -> Handler:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except Exception as exc:
            return error_response(exc, request)

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint


@dataclass(frozen=True)
class Doc:
    """What OpenAPI says about one operation."""

    summary: str
    tags: Sequence[str] = ()
    description: str | None = None
    request_body: Mapping[str, type[BaseModel]] | None = None
    """Media type → model of the request body."""
    responses: Mapping[int, tuple[str, type[BaseModel] | None]] = field(default_factory=dict)
    """Status → (description, model of the JSON body or None)."""
    parameters: Sequence[Mapping[str, Any]] = ()
    scopes: Sequence[str] | None = None
    """Scopes of which a bearer token must hold one; ``None`` when the route is not protected."""
    optional_auth: bool = False
    client_auth: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class _Operation:
    method: str
    path: str
    doc: Doc
    name: str


class Api:
    """Collects routes and their documentation."""

    def __init__(self) -> None:
        self.routes: list[Route] = []
        self._operations: list[_Operation] = []

    def route(
        self, path: str, *, methods: Sequence[str], doc: Doc | None = None
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.routes.append(Route(path, _guarded(handler), methods=list(methods)))
            if doc is not None:
                for method in methods:
                    self._operations.append(_Operation(method.lower(), path, doc, handler.__name__))
            return handler

        return register

    def openapi(self, *, title: str, version: str, token_url: str) -> dict[str, Any]:
        return build_openapi(self._operations, title=title, version=version, token_url=token_url)
