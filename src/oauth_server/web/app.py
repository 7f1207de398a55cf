"""``create_app(settings)``: the composition root of the web layer."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from oauth_server import __version__
from oauth_server.bootstrap import prepare
from oauth_server.clock import Clock
from oauth_server.config import Settings, load_settings
from oauth_server.errors import MethodNotAllowed, NotFound, ServiceError
from oauth_server.oauth.http import render_error
from oauth_server.services import Services, build_services
from oauth_server.web.api import Api, error_response, to_response
from oauth_server.web.routes import oauth, ops, restaurants, wellknown

__all__ = ["create_app"]

log = logging.getLogger("oauth_server")


def _build_api() -> Api:
    api = Api()
    oauth.register(api)
    wellknown.register(api)
    restaurants.register(api)
    ops.register(api)
    return api


async def _http_error(request: Request, exc: Exception) -> Response:
    # Starlette's router raises these for unknown paths and wrong methods.
    assert isinstance(exc, HTTPException)
    error: ServiceError
    if exc.status_code == 405:
        error = MethodNotAllowed((exc.headers or {}).get("Allow", ""))
    elif exc.status_code == 404:
        error = NotFound("no such endpoint")
    else:
        return error_response(exc, request)
    return to_response(render_error(error))


async def _unhandled(request: Request, exc: Exception) -> Response:
    return error_response(exc, request)


def create_app(
    settings: Settings | None = None,
    *,
    services: Services | None = None,
    clock: Clock | None = None,
) -> Starlette:
    """Build the ASGI app. Start-up (lifespan) migrates, seeds in development, refuses unsafe
    production settings, and starts the background cache sync."""
    settings = settings or (services.settings if services else load_settings())
    api = _build_api()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        built = services or build_services(settings, clock=clock)
        try:
            await prepare(settings, built.storage, clock=built.clock)
            await built.start()
            app.state.services = built
            yield
        finally:
            await built.close()

    app = Starlette(
        routes=api.routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error, Exception: _unhandled},
    )
    app.state.openapi = api.openapi(
        title="PythonOauthServer",
        version=__version__,
        token_url=f"{settings.public_issuer}/oauth/token",
    )
    return app


def create_app_from_env() -> Starlette:
    """Factory for ``uvicorn --factory`` and the server's worker processes."""
    return create_app(load_settings())
