"""The web layer: a lean ASGI router over the protocol core, hosted with Starlette."""

from oauth_server.web.app import create_app

__all__ = ["create_app"]
