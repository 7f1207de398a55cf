"""The sign-in pages: Jinja2 templates (autoescaped) and the headers every page carries.

Every page: ``X-Frame-Options: DENY``, a CSP of ``default-src 'none'; style-src 'self';
form-action 'self' …; frame-ancestors 'none'`` (RFC 9700 §4.16), ``Referrer-Policy:
no-referrer``, ``Cache-Control: no-store`` (from :meth:`OAuthResponse.html`). ``form-action``
also names the client's redirect URI origin: browsers apply it to the redirect that answers
the form, and the login and consent forms are answered with a 303 to the client (or a
form_post page posting there).
"""

from __future__ import annotations

import hashlib
from importlib.resources import files
from typing import Any
from urllib.parse import urlencode, urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape

from oauth_server.oauth.http import Headers, OAuthResponse

__all__ = ["SCOPE_WORDS", "STYLESHEET", "STYLESHEET_PATH", "Pages", "stylesheet_response"]

SCOPE_WORDS = {
    "openid": "Know who you are (your account identifier)",
    "profile": "See your name and username",
    "email": "See your email address",
    "offline_access": "Stay signed in and keep access when you are away",
    "restaurent": "Read and change the restaurant list",
    "restaurants:read": "Read the restaurant list",
    "restaurants:write": "Add, change and delete restaurants",
}

STYLESHEET = (files("oauth_server.web") / "static" / "signin.css").read_bytes()
_DIGEST = hashlib.sha256(STYLESHEET).hexdigest()[:16]
STYLESHEET_PATH = f"/static/signin.{_DIGEST}.css"
"""The stylesheet's URL carries its digest, so it may be cached forever."""

_CSS_HEADERS = Headers(
    (
        ("Content-Type", "text/css; charset=utf-8"),
        ("Cache-Control", "public, max-age=31536000, immutable"),
    )
)


def stylesheet_response() -> OAuthResponse:
    return OAuthResponse(200, STYLESHEET, _CSS_HEADERS)


def _origin(uri: str) -> str | None:
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https") and parts.netloc:
        return f"{parts.scheme}://{parts.netloc}"
    if parts.scheme and parts.scheme.isascii():
        return f"{parts.scheme}:"  # private-use scheme (RFC 8252 §7.1): a scheme-source
    return None


def page_policy(redirect_uri: str | None = None) -> str:
    form_action = "'self'"
    origin = _origin(redirect_uri) if redirect_uri else None
    if origin and all(ch not in origin for ch in " ;,'\""):
        form_action += f" {origin}"
    return (
        f"default-src 'none'; style-src 'self'; img-src 'self'; form-action {form_action}; "
        "frame-ancestors 'none'; base-uri 'none'"
    )


def back_to_app_url(
    redirect_uri: str, issuer: str, description: str, state: str | None = None
) -> str:
    """A link back to the client carrying ``access_denied`` (RFC 6749 §4.1.2.1, RFC 9207),
    with the request's ``state`` when it is known."""
    values = {"error": "access_denied", "error_description": description}
    if state is not None:
        values["state"] = state
    values["iss"] = issuer
    params = urlencode(values)
    separator = "&" if urlsplit(redirect_uri).query else "?"
    return f"{redirect_uri}{separator}{params}"


class Pages:
    def __init__(self, *, server_name: str = "PythonOauthServer") -> None:
        self._env = Environment(
            loader=PackageLoader("oauth_server.web", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            auto_reload=False,
        )
        self._server_name = server_name

    def render(
        self,
        template: str,
        *,
        status: int = 200,
        redirect_uri: str | None = None,
        headers: tuple[tuple[str, str], ...] = (),
        **context: Any,
    ) -> OAuthResponse:
        body = self._env.get_template(template).render(
            server_name=self._server_name, stylesheet=STYLESHEET_PATH, **context
        )
        return OAuthResponse.html(
            body, status=status, csp=page_policy(redirect_uri), headers=headers
        )

    def error(
        self,
        *,
        status: int,
        heading: str,
        message: str,
        description: str | None = None,
        code: str | None = None,
        back_url: str | None = None,
        client_name: str = "",
        redirect_uri: str | None = None,
    ) -> OAuthResponse:
        return self.render(
            "error.html",
            status=status,
            title=heading,
            heading=heading,
            message=message,
            description=description,
            code=code,
            back_url=back_url,
            client_name=client_name,
            redirect_uri=redirect_uri,
        )
