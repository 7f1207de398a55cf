"""CORS for browser-based apps (a single-page app with a public client calls the token,
revocation and userinfo endpoints from its own origin). The model is node-oidc-provider's
``clientBasedCORS``: an origin is allowed for the client concerned, decided once the request
has named that client.

The rules:

1. **Allowed origins** of a client: the web origins (scheme, host, port; Fetch §3.2) of its
   registered ``redirect_uris`` that are http(s) URIs. A client that signs users in through a
   page on ``https://spa.example`` calls the endpoints from there; nothing else needs
   registering. Private-use schemes (native apps) have no web origin and send no ``Origin``.
2. **Actual requests** with an ``Origin`` other than the server's own: once the endpoint has
   identified the client (client authentication at the token and revocation endpoints, the
   access token's client at userinfo), :meth:`CorsGate.admit` checks the origin. An origin not
   allowed for that client is refused with ``invalid_request`` *before* the request does
   anything (no code redeemed, no token revoked), and the answer carries no CORS header; an
   allowed one gets ``Access-Control-Allow-Origin: <that origin>`` on the answer, success or
   error. Errors raised before the client is known (``invalid_client``, a malformed body) carry
   no CORS header: the app cannot read them, only see that the call failed.
3. **Preflights** (``OPTIONS``) name no client (a browser sends neither body nor credentials
   with them), so they cannot apply rule 1. They are answered for any origin that is a
   well-formed web origin, for the endpoint's methods and the headers ``Authorization`` and
   ``Content-Type`` only. That grants nothing: it lets the browser send the actual request,
   which rule 2 refuses unless the origin belongs to the client it names; a non-browser
   attacker can send that request anyway, and a simple form POST needs no preflight at all.
   Restricting preflights to the origins of *some* registered client would cost a scan of
   every client per preflight and protect nothing more.
4. **Never credentials**: no ``Access-Control-Allow-Credentials`` (these endpoints read no
   cookie), so never ``*`` with credentials; the allowed origin is echoed, never ``*``.
   ``Vary: Origin`` on every answer of these endpoints, as the answer depends on it.

Everything else keeps CORS off (the authorization and end-session endpoints must not have it,
RFC 9700 §2.6 / OAuth 2.1 §3.1; introspection is for resource servers), except the public
discovery documents, which any origin may read (``web/routes/wellknown.py``).
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit

from oauth_server.errors import InvalidRequest
from oauth_server.oauth.http import Headers, OAuthRequest, OAuthResponse
from oauth_server.storage.models import Client

__all__ = [
    "VARY_ORIGIN",
    "CorsGate",
    "client_origins",
    "preflight",
    "request_origin",
    "web_origin",
]

ALLOWED_HEADERS = frozenset({"authorization", "content-type"})
MAX_AGE = "600"
VARY_ORIGIN = ("Vary", "Origin")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_EXPOSED = ("Access-Control-Expose-Headers", "WWW-Authenticate, Retry-After")


@lru_cache(maxsize=4096)
def web_origin(uri: str) -> str | None:
    """The ASCII serialization of ``uri``'s origin (``https://host[:port]``, the default port
    left out, as browsers send ``Origin``), or ``None`` for a URI without a web origin."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in _DEFAULT_PORTS or not host or not host.isascii():
        return None
    if ":" in host:
        host = f"[{host}]"  # IPv6 literal
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def client_origins(client: Client) -> frozenset[str]:
    """Rule 1: the web origins of the client's registered redirect URIs."""
    return frozenset(o for o in map(web_origin, client.redirect_uris) if o is not None)


def request_origin(request: OAuthRequest, own_origin: str | None) -> str | None:
    """The request's ``Origin`` when it is cross-origin (``None``: no ``Origin`` header, or
    the server's own origin, which needs no CORS)."""
    origin = request.headers.get("origin")
    if origin is None or origin == own_origin:
        return None
    return origin


class CorsGate:
    """One cross-origin request's admission (rule 2): the endpoint calls :meth:`admit` with
    the client it identified; the web layer adds :meth:`headers` when it was admitted."""

    __slots__ = ("admitted", "origin")

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.admitted = False

    def admit(self, client: Client | None) -> None:
        if client is None or self.origin not in client_origins(client):
            raise InvalidRequest("this origin may not call this endpoint for this client")
        self.admitted = True

    def headers(self) -> tuple[tuple[str, str], ...]:
        return (("Access-Control-Allow-Origin", self.origin), _EXPOSED)


def preflight(request: OAuthRequest, methods: tuple[str, ...]) -> OAuthResponse:
    """Rule 3: a preflight is answered for a well-formed web origin, the endpoint's methods,
    and at most the ``Authorization`` and ``Content-Type`` headers; otherwise 204 without
    CORS headers (the browser then does not send the request)."""
    vary = ("Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
    origin = request.headers.get("origin", "")
    method = request.headers.get("access-control-request-method", "")
    asked = {
        name.strip().lower()
        for name in request.headers.get("access-control-request-headers", "").split(",")
        if name.strip()
    }
    if web_origin(origin) != origin or method not in methods or not asked <= ALLOWED_HEADERS:
        return OAuthResponse.empty(204, Headers((vary,)))
    return OAuthResponse.empty(
        204,
        Headers(
            (
                ("Access-Control-Allow-Origin", origin),
                ("Access-Control-Allow-Methods", ", ".join(methods)),
                ("Access-Control-Allow-Headers", "Authorization, Content-Type"),
                ("Access-Control-Max-Age", MAX_AGE),
                vary,
            )
        ),
    )
