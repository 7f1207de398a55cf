"""Resource indicators (RFC 8707): which audience a token is for."""

from __future__ import annotations

from urllib.parse import urlsplit

from oauth_server.errors import InvalidTarget
from oauth_server.storage.models import Client

__all__ = ["resolve_audience"]


def resolve_audience(requested: str | None, *, client: Client, default: str) -> tuple[str, ...]:
    """The audience of the token: the requested resource, which the client must be allowed,
    else the client's default (its first registered resource, or the server's own API).

    RFC 8707 §2: the value "MUST be an absolute URI … MUST NOT include a fragment"; a resource
    the client may not use is ``invalid_target``.
    """
    allowed = client.resources or (default,)
    if requested is None:
        return (allowed[0],)
    parts = urlsplit(requested)
    if not parts.scheme or not parts.netloc or parts.fragment or "#" in requested:
        raise InvalidTarget("resource must be an absolute URI without a fragment")
    if requested not in allowed:
        raise InvalidTarget("this client may not request tokens for that resource")
    return (requested,)
