"""The seam between HTTP and the protocol core: ``OAuthRequest`` in, ``OAuthResponse`` out.

The web layer builds an :class:`OAuthRequest` from whatever framework it runs on and writes an
:class:`OAuthResponse` back; nothing in the core sees the framework. :func:`render_error` is the
one place that turns an error into a response.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from oauth_server.errors import ServiceError

__all__ = ["NO_STORE", "OAuthRequest", "OAuthResponse", "render_error"]

# RFC 6749 §5.1 / OAuth 2.1 §3.2.3: responses carrying tokens or credentials must not be cached.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@dataclass(frozen=True, slots=True)
class OAuthRequest:
    """An HTTP request as the core sees it.

    ``headers`` has lower-case names; a header sent twice appears once with its values joined by
    ``", "`` (RFC 9110 §5.3), so a doubled ``Authorization`` fails to parse instead of being
    silently half-used.
    """

    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    query: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    client_ip: str = ""

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-cased (``""`` when absent)."""
        raw = self.headers.get("content-type", "")
        return raw.split(";", 1)[0].strip().lower()


@dataclass(slots=True)
class OAuthResponse:
    """A response the web layer writes out verbatim."""

    status: int
    body: bytes
    headers: dict[str, str]

    @classmethod
    def json(
        cls,
        data: Any,
        *,
        status: int = 200,
        no_store: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> OAuthResponse:
        out = {"Content-Type": "application/json"}
        if no_store:
            out.update(NO_STORE)
        if headers:
            out.update(headers)
        return cls(status=status, body=orjson.dumps(data), headers=out)

    @classmethod
    def empty(cls, status: int = 204, headers: Mapping[str, str] | None = None) -> OAuthResponse:
        return cls(status=status, body=b"", headers=dict(headers or {}))


def render_error(error: ServiceError) -> OAuthResponse:
    """Render any :class:`ServiceError`: JSON body, its status, its challenge headers, no-store."""
    return OAuthResponse.json(
        error.body(), status=error.status_code, no_store=True, headers=error.headers()
    )
