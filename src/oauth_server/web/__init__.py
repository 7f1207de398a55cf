"""The web layer: a Starlette app whose routes adapt HTTP to the core and back."""

from oauth_server.web.app import create_app

__all__ = ["create_app"]
