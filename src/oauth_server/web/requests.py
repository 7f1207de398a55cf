"""Each request's id and its one log line.

**Request id.** A reverse proxy that already named the request (``X-Request-ID``) is believed
only when it is one of ``OAUTH_SERVER_TRUSTED_PROXIES`` (RFC 9700 §4.13: a proxy's headers
are trusted only from the proxy) and the value is sane: 1 to 128 characters of letters,
digits and ``._:-`` (a UUID, a hex string). Anything else — a client writing the header
itself, a value that could forge a log line — is replaced by an id of our own: this process's
random prefix and a counter (unique across processes and restarts, and cheaper than random
bytes per request). The id is answered in ``X-Request-ID``, logged with the request, and named
in the log line of any unexpected error, so an operator can find one from the other.

**Request log** (``OAUTH_SERVER_ACCESS_LOG``). Logger ``oauth_server.request``, one line per
request with the fields ``request_id``, ``method``, ``route`` (the declared template, never the
raw path or query, which can carry codes and tokens), ``status``, ``latency_ms``, ``client_id``
(the client that authenticated, or the bearer token's), ``user_id`` and ``error`` (the RFC
error code of an error answer).
"""

from __future__ import annotations

import itertools
import logging
import re
import secrets

from oauth_server.addresses import TrustedProxies
from oauth_server.web.adapters import Scope

__all__ = [
    "REQUEST_ID_SCOPE_KEY",
    "UNMATCHED_ROUTE",
    "RequestIds",
    "log_request",
]

REQUEST_ID_SCOPE_KEY = "oauth_server.request_id"
"""Where the router leaves the id in the ASGI scope for what Starlette answers."""
UNMATCHED_ROUTE = "unmatched"
"""The route name of every path no route declares (logs and metrics)."""

_SANE = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

request_log = logging.getLogger("oauth_server.request")


class RequestIds:
    def __init__(self, proxies: TrustedProxies | None) -> None:
        self._proxies = proxies
        self._prefix = secrets.token_hex(6) + "-"
        self._counter = itertools.count(1)

    def for_request(self, scope: Scope) -> str:
        """The id of the request ``scope`` describes."""
        proxies = self._proxies
        if proxies is not None:
            client = scope.get("client")
            if client and proxies.trusts(client[0]):
                for name, value in scope["headers"]:
                    if name == b"x-request-id":
                        text: str = value.decode("latin-1")
                        if _SANE.fullmatch(text):
                            return text
                        break
        return f"{self._prefix}{next(self._counter):x}"


def log_request(
    request_id: str,
    method: str,
    route: str,
    status: int,
    seconds: float,
    *,
    client_id: str | None = None,
    user_id: str | None = None,
    error: str | None = None,
) -> None:
    """Write the request's line (INFO; 5xx answers at WARNING)."""
    level = logging.WARNING if status >= 500 else logging.INFO
    if not request_log.isEnabledFor(level):
        return
    fields = {
        "request_id": request_id,
        "method": method,
        "route": route,
        "status": status,
        "latency_ms": round(seconds * 1000, 3),
        "client_id": client_id,
        "user_id": user_id,
        "error": error,
    }
    request_log.log(level, "%s %s %d", method, route, status, extra={"fields": fields})
