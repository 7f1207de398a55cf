"""The seam between HTTP and the protocol core: ``OAuthRequest`` in, ``OAuthResponse`` out.

The web layer (``oauth_server.web.adapters``) builds an :class:`OAuthRequest` from the ASGI
scope and writes an :class:`OAuthResponse` back; nothing in the core sees the framework.
:func:`render_error` is the one place that turns an error into a response: JSON (with the
challenge headers the RFCs ask for), a redirect back to the client carrying the error, or an
HTML error page when the client or its redirect URI cannot be trusted.
"""

from __future__ import annotations

import base64
import hashlib
import html as _html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, SupportsIndex, overload
from urllib.parse import urlencode, urlsplit

import orjson

from oauth_server.errors import (
    AuthorizationError,
    ServerError,
    ServiceError,
    TemporarilyUnavailable,
)
from oauth_server.storage.errors import is_unavailable

__all__ = [
    "NO_STORE",
    "CookieJar",
    "Headers",
    "OAuthRequest",
    "OAuthResponse",
    "RedirectTarget",
    "RequestNotes",
    "ResponseMode",
    "error_code",
    "parse_cookies",
    "render_error",
]

ResponseMode = Literal["query", "form_post"]


class Headers(tuple[tuple[str, str], ...]):
    """Response header lines as ``(name, value)`` pairs, in order; a name may repeat (two
    ``Set-Cookie`` lines). Built once per constant, so the hot responses allocate nothing.

    It reads like the mapping it replaced where that is unambiguous: :meth:`get` (first value,
    case-insensitive), :meth:`items` (the pairs), and equality with a mapping of the same lines.
    """

    __slots__ = ()

    @classmethod
    def of(cls, headers: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> Headers:
        if headers is None:
            return _NO_HEADERS
        if isinstance(headers, Headers):
            return headers
        if isinstance(headers, Mapping):
            return cls(tuple(headers.items()))
        return cls(tuple(headers))

    def items(self) -> Headers:
        return self

    def get(self, name: str, default: str | None = None) -> str | None:
        wanted = name.lower()
        for key, value in self:
            if key.lower() == wanted:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in self if key.lower() == wanted]

    def __add__(self, other: tuple[Any, ...]) -> Headers:
        return Headers(tuple.__add__(self, other))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return len(self) == len(other) and dict(self) == dict(other)
        return tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = tuple.__hash__

    @overload
    def __getitem__(self, index: SupportsIndex) -> tuple[str, str]: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[tuple[str, str], ...]: ...
    @overload
    def __getitem__(self, index: str) -> str: ...
    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, str):
            value = self.get(index)
            if value is None:
                raise KeyError(index)
            return value
        return tuple.__getitem__(self, index)


_NO_HEADERS = Headers()
# RFC 6749 §5.1 / OAuth 2.1 §3.2.3: responses carrying tokens or credentials must not be cached.
NO_STORE = Headers((("Cache-Control", "no-store"), ("Pragma", "no-cache")))
_JSON = Headers((("Content-Type", "application/json"),))
_JSON_NO_STORE = _JSON + NO_STORE
# Pages a browser renders forbid framing (clickjacking, RFC 9700 §4.16) and referrer leaks.
_HTML = Headers(
    (
        ("Content-Type", "text/html; charset=utf-8"),
        ("Cache-Control", "no-store"),
        ("Pragma", "no-cache"),
        ("X-Frame-Options", "DENY"),
        ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
        ("Referrer-Policy", "no-referrer"),
    )
)

# RFC 6265 §4.1.1: cookie-name is a token, cookie-value is *cookie-octet.
_COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_COOKIE_VALUE = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")


def parse_cookies(header: str) -> dict[str, str]:
    """The ``Cookie`` header (RFC 6265 §5.4) as a mapping; the first of a repeated name wins
    (browsers send the most specific first), malformed pairs are skipped."""
    cookies: dict[str, str] = {}
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if not sep or not _COOKIE_NAME.fullmatch(name):
            continue
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        if _COOKIE_VALUE.fullmatch(value):
            cookies.setdefault(name, value)
    return cookies


class RequestNotes:
    """What the core learned while serving a request, for the web layer's request log: the
    client that authenticated and the user the request acted for. Identifiers only — set
    after they were verified, never from what a request merely claims."""

    __slots__ = ("client_id", "user_id")

    def __init__(self) -> None:
        self.client_id: str | None = None
        self.user_id: str | None = None


@dataclass(frozen=True, slots=True)
class OAuthRequest:
    """An HTTP request as the core sees it.

    ``headers`` has lower-case names; a header sent twice appears once with its values joined by
    ``", "`` (RFC 9110 §5.3), so a doubled ``Authorization`` fails to parse instead of being
    silently half-used. ``query`` holds the decoded query parameters (strict UTF-8; the adapter
    refuses anything else), ``query_string`` the raw one.
    """

    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    query: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    client_ip: str = ""
    query_string: str = ""
    notes: RequestNotes = field(default_factory=RequestNotes, compare=False, repr=False)
    # Not set by __init__ (no per-request cost): filled on first use of ``cookies``.
    _cookies: dict[str, str] = field(init=False, compare=False, repr=False)

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-cased (``""`` when absent)."""
        raw = self.headers.get("content-type", "")
        return raw.split(";", 1)[0].strip().lower()

    @property
    def cookies(self) -> Mapping[str, str]:
        """The request's cookies, parsed on first use (only browser endpoints read them)."""
        try:
            return self._cookies
        except AttributeError:
            cookies = parse_cookies(self.headers.get("cookie", ""))
            object.__setattr__(self, "_cookies", cookies)
            return cookies


@dataclass(frozen=True, slots=True)
class CookieJar:
    """How this server's cookies are set: ``HttpOnly``, ``SameSite=Lax``, ``Path=/``, and, when
    the issuer is https, ``Secure`` and the ``__Host-`` prefix (RFC 6265bis §4.1.3.2: no
    ``Domain``, so the cookie is bound to this host)."""

    secure: bool

    @classmethod
    def for_issuer(cls, issuer: str) -> CookieJar:
        return cls(secure=issuer.startswith("https://"))

    def name(self, name: str) -> str:
        """The name on the wire (``__Host-`` prefixed when secure)."""
        return f"__Host-{name}" if self.secure else name

    def read(self, request: OAuthRequest, name: str) -> str | None:
        return request.cookies.get(self.name(name))

    def set(self, name: str, value: str, *, max_age: int) -> tuple[str, str]:
        """A ``Set-Cookie`` header line."""
        if not _COOKIE_NAME.fullmatch(name) or not _COOKIE_VALUE.fullmatch(value):
            raise ValueError("cookie name or value outside RFC 6265 §4.1.1")
        line = f"{self.name(name)}={value}; Max-Age={max_age}; Path=/; HttpOnly; SameSite=Lax"
        if self.secure:
            line += "; Secure"
        return ("Set-Cookie", line)

    def delete(self, name: str) -> tuple[str, str]:
        """A ``Set-Cookie`` line that removes the cookie (same attributes, ``Max-Age=0``)."""
        return self.set(name, "", max_age=0)


class OAuthResponse:
    """A response the web layer writes out verbatim: status, body, and :class:`Headers` (a
    mapping or a sequence of pairs given here is converted)."""

    __slots__ = ("body", "headers", "status")

    def __init__(
        self,
        status: int,
        body: bytes,
        headers: Headers | Mapping[str, str] | Iterable[tuple[str, str]] = (),
    ) -> None:
        self.status = status
        self.body = body
        self.headers: Headers = headers if type(headers) is Headers else Headers.of(headers)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OAuthResponse):
            return NotImplemented
        return (self.status, self.body, self.headers) == (other.status, other.body, other.headers)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"OAuthResponse(status={self.status}, body={self.body!r}, headers={self.headers!r})"

    @classmethod
    def json(
        cls,
        data: Any,
        *,
        status: int = 200,
        no_store: bool = False,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    ) -> OAuthResponse:
        base = _JSON_NO_STORE if no_store else _JSON
        if headers:
            base = base + tuple(Headers.of(headers))
        return cls(status, orjson.dumps(data), base)

    @classmethod
    def empty(
        cls, status: int = 204, headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None
    ) -> OAuthResponse:
        return cls(status, b"", Headers.of(headers))

    @classmethod
    def redirect(
        cls,
        location: str,
        *,
        status: Literal[302, 303] = 303,
        headers: Iterable[tuple[str, str]] = (),
    ) -> OAuthResponse:
        """A redirect: 303 (See Other) by default, so a POSTed form is followed with a GET
        (OAuth 2.1 §7.5.2 forbids 307); 302 is allowed for GET requests."""
        if status not in (302, 303):
            raise ValueError("a redirect is 302 or 303")
        lines = (("Location", location), *NO_STORE, *headers)
        return cls(status, b"", Headers(lines))

    @classmethod
    def html(
        cls,
        body: str,
        *,
        status: int = 200,
        headers: Iterable[tuple[str, str]] = (),
        csp: str | None = None,
    ) -> OAuthResponse:
        """An HTML page, never cached, never framed. ``csp`` replaces the default policy
        (which allows nothing; it must keep ``frame-ancestors 'none'``)."""
        lines = _HTML
        if csp is not None:
            if "frame-ancestors 'none'" not in csp:
                raise ValueError("a page's policy must forbid framing")
            lines = Headers(
                (name, csp if name == "Content-Security-Policy" else value) for name, value in _HTML
            )
        extra = tuple(headers)
        return cls(status, body.encode("utf-8"), lines + extra if extra else lines)

    def with_headers(self, *lines: tuple[str, str]) -> OAuthResponse:
        """This response with more header lines (``Set-Cookie`` from :class:`CookieJar`)."""
        return OAuthResponse(self.status, self.body, self.headers + lines)


@dataclass(frozen=True, slots=True)
class RedirectTarget:
    """Where an authorization response may go: a redirect URI the caller has already validated
    against the client's registration, with the request's ``state`` and response mode."""

    redirect_uri: str
    issuer: str
    state: str | None = None
    response_mode: ResponseMode = "query"


def _with_query(uri: str, params: Mapping[str, str]) -> str:
    # RFC 6749 §3.1.2: the redirect URI's own query component MUST be retained.
    separator = "&" if urlsplit(uri).query else ("" if uri.endswith("?") else "?")
    return uri + separator + urlencode(params)


def authorization_response(target: RedirectTarget, params: Mapping[str, str]) -> OAuthResponse:
    """Send ``params`` back to the client (RFC 6749 §4.1.2): in the redirect URI's query, or
    as an auto-submitting form (OAuth 2.0 Form Post Response Mode §2). ``iss`` is added to
    every authorization response (RFC 9207 §2), ``state`` whenever the request had one."""
    values = dict(params)
    if target.state is not None:
        values["state"] = target.state
    values["iss"] = target.issuer
    if target.response_mode == "form_post":
        return OAuthResponse.html(
            _form_post_page(target.redirect_uri, values),
            csp=_form_post_policy(target.redirect_uri),
        )
    return OAuthResponse.redirect(_with_query(target.redirect_uri, values))


def _form_post_policy(redirect_uri: str) -> str:
    # The one inline script submits the form; form-action allows only the client's endpoint.
    parts = urlsplit(redirect_uri)
    origin = f"{parts.scheme}://{parts.netloc}"
    return (
        "default-src 'none'; script-src 'sha256-"
        + _SUBMIT_SCRIPT_HASH
        + f"'; form-action {origin}; frame-ancestors 'none'; base-uri 'none'"
    )


_SUBMIT_SCRIPT = "document.forms[0].submit();"
_SUBMIT_SCRIPT_HASH = base64.b64encode(hashlib.sha256(_SUBMIT_SCRIPT.encode()).digest()).decode()


def _form_post_page(action: str, values: Mapping[str, str]) -> str:
    escape = _html.escape
    fields = "".join(
        f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'
        for name, value in values.items()
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Submit</title></head>'
        f'<body><form method="post" action="{escape(action)}">{fields}'
        '<noscript><button type="submit">Continue</button></noscript></form>'
        f"<script>{_SUBMIT_SCRIPT}</script></body></html>"
    )


def _error_page(error: ServiceError) -> str:
    escape = _html.escape
    description = escape(error.description or "the request cannot be processed")
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>Sign-in error</title></head><body><main><h1>This request cannot be completed"
        f"</h1><p>{description}</p><p>Error code: <code>{escape(error.error)}</code></p>"
        "</main></body></html>"
    )


def error_code(exc: BaseException) -> str:
    """The ``error`` an exception is answered with (metrics and logs name it): its own code,
    else ``temporarily_unavailable`` for a storage outage, ``server_error`` for a bug."""
    if isinstance(exc, ServiceError):
        return exc.error
    return TemporarilyUnavailable.error if is_unavailable(exc) else ServerError.error


def render_error(error: ServiceError, target: RedirectTarget | None = None) -> OAuthResponse:
    """Render any :class:`ServiceError`, the one way errors leave the server.

    - An authorization-endpoint error (:class:`~oauth_server.errors.AuthorizationError`) with a
      validated ``target`` goes back to the client (RFC 6749 §4.1.2.1, RFC 9207 §2).
    - An authorization-endpoint error without one (the client or its redirect URI is the
      problem, or unknown) is an HTML page with status 400: RFC 6749 §4.1.2.1 says the server
      MUST NOT redirect then.
    - Everything else: JSON body, its status, its challenge headers, no-store.
    """
    if isinstance(error, AuthorizationError):
        if target is not None and error.redirectable:
            return authorization_response(target, error.body())
        return OAuthResponse.html(_error_page(error), status=400)
    return OAuthResponse.json(
        error.body(), status=error.status_code, no_store=True, headers=error.headers()
    )
