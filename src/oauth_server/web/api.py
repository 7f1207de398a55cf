"""Routes: declared once with their documentation, served by a lean ASGI router.

Each operation is declared with :meth:`Api.route`: an async handler taking a :class:`Call`
(the :class:`OAuthRequest`, path parameters and the services) and returning an
:class:`OAuthResponse`, plus what OpenAPI says about it. :meth:`Api.openapi` builds the
document from those declarations, so the docs cannot drift from the routes.

Why not Starlette's router: on this project's hot paths (token, introspection, the restaurants
API) a Starlette route plus its ``Request``/``Response`` objects cost more than the protocol work
itself — measured on the 2-core benchmark machine, the token endpoint served 7.1k req/s through
a Starlette route and 10.2k through a plain ASGI handler calling the same core. The router here
does only what the routes need: exact paths (a dict lookup) and templates with whole-segment
parameters, a method check (405 with
``Allow``), the body read with its size cap (413 before parsing), and one error translation.
Starlette still hosts it (lifespan, the 404 for unknown paths, the last-resort error handler).
The ASGI ↔ core translation is :mod:`oauth_server.web.adapters`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from time import perf_counter
from typing import TYPE_CHECKING, Any, Protocol

from oauth_server.addresses import TrustedProxies
from oauth_server.errors import MethodNotAllowed
from oauth_server.oauth.http import OAuthRequest, OAuthResponse, error_code
from oauth_server.web.adapters import (
    ClientDisconnected,
    Message,
    Receive,
    Scope,
    Send,
    error_response,
    read_request,
    security_headers,
    send_response,
)
from oauth_server.web.openapi import Doc, build_openapi
from oauth_server.web.requests import (
    REQUEST_ID_SCOPE_KEY,
    UNMATCHED_ROUTE,
    RequestIds,
    log_request,
)

if TYPE_CHECKING:
    from oauth_server.services import Services

__all__ = [
    "Api",
    "Call",
    "Doc",
    "FastRouter",
    "RequestObserver",
]


@dataclass(frozen=True, slots=True)
class Call:
    """One request as a handler sees it."""

    request: OAuthRequest
    services: Services
    path_params: Mapping[str, str]


Handler = Callable[[Call], Awaitable[OAuthResponse]]


class RequestObserver(Protocol):
    """Where the router reports each answered request (the metrics)."""

    def request_served(self, route: str, method: str, status: int, seconds: float) -> None: ...


@dataclass
class _Operation:
    method: str
    path: str
    doc: Doc | None
    name: str
    handler: Handler


class Api:
    """Collects operations and their documentation."""

    def __init__(self) -> None:
        self.operations: list[_Operation] = []

    def route(
        self, path: str, *, methods: Sequence[str], doc: Doc | None = None
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            for method in methods:
                self.operations.append(_Operation(method, path, doc, handler.__name__, handler))
            return handler

        return register

    def openapi(self, *, title: str, version: str, token_url: str) -> dict[str, Any]:
        documented = [
            _Operation(op.method.lower(), op.path, op.doc, op.name, op.handler)
            for op in self.operations
            if op.doc is not None
        ]
        return build_openapi(documented, title=title, version=version, token_url=token_url)


class _Route:
    __slots__ = ("allow", "handlers", "params", "pattern", "template")

    def __init__(
        self, pattern: tuple[str | None, ...], params: tuple[str, ...], template: str
    ) -> None:
        self.template = template
        """The path as declared (``/api/restaurants/{id}``): what logs and metrics name."""
        self.pattern = pattern
        """The path's segments; ``None`` where a parameter goes."""
        self.params = params
        self.handlers: dict[str, Handler] = {}
        self.allow = ""


def _compile(path: str) -> tuple[tuple[str | None, ...], tuple[str, ...]]:
    """``/a/{x}/b/{y}`` → segments ``("", "a", None, "b", None)`` and parameters ``("x", "y")``."""
    segments: list[str | None] = []
    params: list[str] = []
    for segment in path.split("/"):
        if segment.startswith("{") and segment.endswith("}"):
            name = segment[1:-1]
            if not name.isidentifier() or name in params:
                raise ValueError(f"bad path parameter {segment!r} in {path}")
            params.append(name)
            segments.append(None)
        elif "{" in segment or "}" in segment:
            raise ValueError(f"a path parameter must be a whole segment: {path}")
        else:
            segments.append(segment)
    return tuple(segments), tuple(params)


class FastRouter:
    """The outermost ASGI app: serves the declared operations itself and hands everything
    else (lifespan, unknown paths) to ``app``, whose ``state`` it shares.

    Exact paths are one dict lookup. Paths with parameters (each a whole segment:
    ``/admin/api/users/{user_id}/sessions/{session_id}``) are grouped by segment count and
    matched segment by segment; a parameter matches one non-empty segment. When two templates
    match, the one with more literal segments earlier wins (``/a/new`` before ``/a/{id}``).
    """

    def __init__(
        self,
        app: Any,
        *,
        api: Api,
        max_body_bytes: int,
        hsts: bool = False,
        trusted_proxies: TrustedProxies | None = None,
        observer: RequestObserver | None = None,
        request_log: bool = False,
    ) -> None:
        self._app = app
        self.state = app.state
        self._max_body = max_body_bytes
        self._proxies = trusted_proxies or None
        self._request_ids = RequestIds(self._proxies)
        self._observer = observer
        self._request_log = request_log
        self._security_headers = security_headers(hsts=hsts)
        self._exact: dict[str, _Route] = {}
        self._templates: dict[str, _Route] = {}
        self._by_length: dict[int, list[_Route]] = {}
        for operation in api.operations:
            route = self._route_for(operation.path)
            route.handlers[operation.method] = operation.handler
            if operation.method == "GET":
                route.handlers.setdefault("HEAD", operation.handler)
        for route in (*self._exact.values(), *self._templates.values()):
            route.allow = ", ".join(sorted(route.handlers))
        for routes in self._by_length.values():
            # Literal segments before parameters, left to right.
            routes.sort(key=lambda r: tuple(segment is None for segment in r.pattern))

    def _route_for(self, path: str) -> _Route:
        if "{" not in path and "}" not in path:
            return self._exact.setdefault(path, _Route((), (), path))
        pattern, params = _compile(path)
        key = "/".join("{}" if segment is None else segment for segment in pattern)
        route = self._templates.get(key)
        if route is None:
            route = self._templates[key] = _Route(pattern, params, path)
            self._by_length.setdefault(len(pattern), []).append(route)
        elif route.params != params:
            raise ValueError(f"{path} differs from another route only in parameter names")
        return route

    def match(self, path: str) -> tuple[_Route, dict[str, str]] | None:
        """The route serving ``path`` and its parameters, or ``None``."""
        route = self._exact.get(path)
        if route is not None:
            return route, {}
        segments = path.split("/")
        for candidate in self._by_length.get(len(segments), ()):
            values: list[str] = []
            for expected, actual in zip(candidate.pattern, segments, strict=True):
                if expected is None:
                    if not actual:
                        break
                    values.append(actual)
                elif expected != actual:
                    break
            else:
                return candidate, dict(zip(candidate.params, values, strict=True))
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = perf_counter()
        request_id = self._request_ids.for_request(scope)
        path: str = scope["path"]
        matched = self.match(path)
        if matched is None:
            await self._fallback(scope, receive, send, request_id, started)
            return
        route, params = matched
        method: str = scope["method"]
        handler = route.handlers.get(method)
        request: OAuthRequest | None = None
        error: str | None = None
        try:
            if handler is None:
                raise MethodNotAllowed(route.allow)
            request = await read_request(
                scope, receive, method, path, max_body=self._max_body, proxies=self._proxies
            )
            services: Services = self.state.services
            response = await handler(Call(request, services, params))
        except ClientDisconnected:
            return  # nobody to answer (the protocol may have answered 408 already)
        except Exception as exc:
            response = error_response(exc, method, path, request_id=request_id)
            error = error_code(exc)
        await send_response(
            send,
            response,
            self._security_headers,
            head=method == "HEAD",
            request_id=request_id.encode("latin-1"),
        )
        elapsed = perf_counter() - started
        if handler is None:
            method = _other_method(method)
        if self._observer is not None:
            self._observer.request_served(route.template, method, response.status, elapsed)
        if self._request_log:
            notes = request.notes if request is not None else None
            log_request(
                request_id,
                method,
                route.template,
                response.status,
                elapsed,
                client_id=notes.client_id if notes else None,
                user_id=notes.user_id if notes else None,
                error=error,
            )

    async def _fallback(
        self, scope: Scope, receive: Receive, send: Send, request_id: str, started: float
    ) -> None:
        """Unknown paths (Starlette's 404): the same request id, log line and metrics, under
        one route name whatever the path (it is not a template, and it is not logged)."""
        header = (b"x-request-id", request_id.encode("latin-1"))
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        scope[REQUEST_ID_SCOPE_KEY] = request_id
        await self._app(scope, receive, send_with_id)
        elapsed = perf_counter() - started
        method = _other_method(scope["method"])
        if self._observer is not None:
            self._observer.request_served(UNMATCHED_ROUTE, method, status, elapsed)
        if self._request_log:
            log_request(request_id, method, UNMATCHED_ROUTE, status, elapsed)


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _other_method(method: str) -> str:
    """A method no route serves, as logs and metrics name it (bounded: ``OTHER``)."""
    return method if method in _METHODS else "OTHER"
