"""Access to the services the app was built with."""

from __future__ import annotations

from typing import cast

from starlette.requests import Request

from oauth_server.services import Services

__all__ = ["services_of"]


def services_of(request: Request) -> Services:
    return cast(Services, request.app.state.services)
