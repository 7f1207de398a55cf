"""Redirect URIs: what may be registered, and whether a presented one matches.

Both functions are pure (no I/O, no settings). :func:`check_redirect_uri` runs once, at
registration; :func:`redirect_uri_matches` runs on every authorization request and is a string
comparison, so a registered URI must already be in the one form that will be compared.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "LOOPBACK_HOSTS",
    "MAX_REDIRECT_URI_LENGTH",
    "InvalidRedirectUri",
    "check_redirect_uri",
    "redirect_uri_matches",
]

MAX_REDIRECT_URI_LENGTH: Final = 2000
"""Characters; it travels in a query string of the authorization request and response."""

LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "[::1]", "localhost"})
"""Hosts for which ``http`` is allowed and the port may differ at use time (RFC 8252 §7.3).
``localhost`` is NOT RECOMMENDED (RFC 8252 §8.3: it may resolve to a non-loopback interface);
it is accepted because native apps use it, and its port varies like the IP literals' (an app
listening on ``localhost`` gets an ephemeral port just the same)."""

_NEVER: Final = frozenset({"javascript", "data", "vbscript", "file", "blob", "about"})
# RFC 3986 §2: unreserved / reserved / "%" (checked for two hex digits below). Everything else
# — whitespace, controls, backslash, quotes, angle brackets, non-ASCII (write an IDN host as
# its A-label, "xn--…") — is not a URI character.
_URI_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_IPV6 = re.compile(r"\[[0-9a-f:.]+\]")
_PORT = re.compile(r"[0-9]{1,5}")
_INVISIBLE = re.compile(r"[\x00-\x20\x7f\s]")


class InvalidRedirectUri(ValueError):
    """A redirect URI that may not be registered; the message says which rule it breaks."""


def check_redirect_uri(uri: str) -> str:
    """Return ``uri`` unchanged if it may be registered as a redirect URI, else raise
    :class:`InvalidRedirectUri` naming the rule.

    The rules, and where they come from:

    1. At most :data:`MAX_REDIRECT_URI_LENGTH` characters, and only URI characters (RFC 3986
       §2): no whitespace or control character anywhere, no backslash, no non-ASCII (an IDN
       host is registered as its A-label, so a look-alike Unicode host cannot be).
    2. Absolute: a scheme, then something after it (RFC 6749 §3.1.2: "MUST be an absolute
       URI"; RFC 3986 §4.3). Scheme and host in lower case: matching is a simple string
       comparison (RFC 3986 §6.2.1, RFC 9700 §4.1.3), so the registered form must be the one
       the client sends.
    3. No fragment (RFC 6749 §3.1.2: "MUST NOT include a fragment component").
    4. Never ``javascript:``, ``data:``, ``vbscript:``, ``file:`` (nor ``blob:``, ``about:``),
       whatever the case and whatever whitespace or control characters are hidden in them
       (the Keycloak CVE class; a browser strips those before reading the scheme).
    5. No wildcard ``*`` anywhere: exact registration (RFC 9700 §2.1, §4.1.3; OAuth 2.1
       §2.3.1: the complete URI is registered and compared).
    6. ``https``: an authority with a host name (lower-case LDH labels, no trailing dot) or
       an IP literal, an optional port, no userinfo (``user@``; RFC 9700 §4.1.3's open
       redirect trick ``https://good.example@evil.example``), no ``.`` or ``..`` path
       segment (a browser removes them, RFC 3986 §5.2.4, so the registered URI would not be
       the one reached).
    7. ``http``: only to a loopback host — ``127.0.0.1``, ``[::1]`` or ``localhost`` — for
       native apps (RFC 8252 §7.3, §8.3; RFC 9700 §2.6; OAuth 2.1 §2.3.1); the port may be
       left out, as any port matches at use time (see :func:`redirect_uri_matches`).
    8. Any other scheme is a private-use scheme of a native app and must contain a dot,
       reverse-DNS style (``com.example.app:/callback``; RFC 8252 §7.1, and §8.4: "any
       private-use URI scheme that doesn't contain a period character (".") SHOULD be
       rejected"), with a non-empty remainder and no userinfo.
    """
    if len(uri) > MAX_REDIRECT_URI_LENGTH:
        raise InvalidRedirectUri(f"is longer than {MAX_REDIRECT_URI_LENGTH} characters")
    # Rule 4 first, on the URI as a browser would read it, so the reason is the real one.
    visible = _INVISIBLE.sub("", uri)
    scheme_match = _SCHEME.match(visible)
    if scheme_match is not None and scheme_match.group(1).lower() in _NEVER:
        raise InvalidRedirectUri(f"the {scheme_match.group(1).lower()}: scheme is never allowed")
    if _URI_CHARS.fullmatch(uri) is None:
        raise InvalidRedirectUri(
            "contains a character a URI cannot (whitespace, control, backslash, quote, "
            "non-ASCII: write an international host name as its xn-- form)"
        )
    if _BAD_PERCENT.search(uri):
        raise InvalidRedirectUri("has a % not followed by two hexadecimal digits")
    if "#" in uri:
        raise InvalidRedirectUri("has a fragment (#…), which RFC 6749 §3.1.2 forbids")
    if "*" in uri:
        raise InvalidRedirectUri("has a wildcard (*): register each redirect URI exactly")
    scheme_match = _SCHEME.match(uri)
    if scheme_match is None or len(uri) == scheme_match.end():
        raise InvalidRedirectUri("is not an absolute URI (scheme:…)")
    scheme = scheme_match.group(1)
    if scheme != scheme.lower():
        raise InvalidRedirectUri("must have a lower-case scheme")
    rest = uri[scheme_match.end() :]
    if scheme in ("https", "http"):
        _check_web(scheme, rest)
    else:
        _check_private_use(scheme, rest)
    return uri


def _check_web(scheme: str, rest: str) -> None:
    if not rest.startswith("//"):
        raise InvalidRedirectUri(f"must have a host ({scheme}://host/…)")
    authority, path = _split_authority(rest[2:])
    if "@" in authority:
        raise InvalidRedirectUri("must not have userinfo (user@host)")
    host, port = _split_port(authority)
    if port is not None and (_PORT.fullmatch(port) is None or not 0 < int(port) < 65536):
        raise InvalidRedirectUri("has an invalid port")
    if not host:
        raise InvalidRedirectUri("must have a host")
    if host != host.lower():
        raise InvalidRedirectUri("must have a lower-case host")
    if not (_IPV6.fullmatch(host) or all(_LABEL.fullmatch(label) for label in host.split("."))):
        raise InvalidRedirectUri(
            "has an invalid host (letters, digits and hyphens in dot-separated labels, no "
            "trailing dot, or an IP literal)"
        )
    path_only = path.split("?", 1)[0]
    if any(segment in (".", "..") for segment in path_only.split("/")[1:]):
        raise InvalidRedirectUri("has a . or .. path segment")
    if scheme == "http" and host not in LOOPBACK_HOSTS:
        raise InvalidRedirectUri(
            "must use https (http only for a loopback host: 127.0.0.1, [::1] or localhost)"
        )


def _check_private_use(scheme: str, rest: str) -> None:
    if "." not in scheme:
        raise InvalidRedirectUri(
            f"uses the scheme {scheme}:, which is neither https nor a private-use scheme "
            "in reverse-DNS form with a dot (com.example.app:/callback, RFC 8252 §7.1)"
        )
    if rest.startswith("//") and "@" in _split_authority(rest[2:])[0]:
        raise InvalidRedirectUri("must not have userinfo (user@host)")


def _split_authority(after_slashes: str) -> tuple[str, str]:
    """``host:port/path?query`` → (``host:port``, ``/path?query``)."""
    end = len(after_slashes)
    for delimiter in "/?":
        index = after_slashes.find(delimiter)
        if index != -1:
            end = min(end, index)
    return after_slashes[:end], after_slashes[end:]


def _split_port(authority: str) -> tuple[str, str | None]:
    if authority.startswith("["):
        close = authority.find("]")
        if close == -1:
            return authority, None
        host, after = authority[: close + 1], authority[close + 1 :]
        if not after:
            return host, None
        if not after.startswith(":"):
            return authority, None  # an invalid host; rejected by the host check
        return host, after[1:]
    host, colon, port = authority.partition(":")
    return host, port if colon else None


def redirect_uri_matches(registered: str, presented: str) -> bool:
    """Whether a redirect URI presented in a request is the registered one.

    Exact simple string comparison (RFC 3986 §6.2.1; RFC 9700 §2.1 and §4.1.3; OAuth 2.1
    §4.1.1): no case folding, no percent-decoding, no normalization of any kind. The only
    exception is a loopback redirect URI (``http`` to ``127.0.0.1``, ``[::1]`` or
    ``localhost``): the port may differ, or be absent on either side, because a native app
    listens on an ephemeral port (RFC 8252 §7.3, §8.4); everything else — scheme, host, path,
    query — must still be identical.
    """
    if presented == registered:
        return True
    for host in LOOPBACK_HOSTS:
        prefix = f"http://{host}"
        if registered.startswith(prefix) and presented.startswith(prefix):
            wanted = _without_port(registered[len(prefix) :])
            return wanted is not None and wanted == _without_port(presented[len(prefix) :])
    return False


def _without_port(after_host: str) -> str | None:
    """What follows the host, the port removed: ``None`` unless it is an optional ``:port``
    (1-65535) followed by nothing, a path or a query. (So ``127.0.0.1.evil.example`` or
    ``127.0.0.1:80@evil.example`` is never a loopback URI with another port.)"""
    if after_host.startswith(":"):
        end = 1
        while end < len(after_host) and after_host[end].isascii() and after_host[end].isdigit():
            end += 1
        port = after_host[1:end]
        if _PORT.fullmatch(port) is None or not 0 < int(port) < 65536:
            return None
        after_host = after_host[end:]
    if after_host and after_host[0] not in "/?":
        return None
    return after_host
