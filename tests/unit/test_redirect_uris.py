"""Redirect URI rules, table-driven: what may be registered (``check_redirect_uri``) and what a
presented URI must be to match (``redirect_uri_matches``), with the open-redirect tricks other
servers fell for."""

from __future__ import annotations

import pytest

from oauth_server.oauth.redirect_uris import (
    MAX_REDIRECT_URI_LENGTH,
    InvalidRedirectUri,
    check_redirect_uri,
    redirect_uri_matches,
)

ACCEPTED = [
    "https://app.example/callback",
    "https://app.example",  # an empty path is a complete URI too
    "https://app.example:8443/cb?tenant=a&x=%2F",  # a query (RFC 6749 §3.1.2), percent-escapes
    "https://xn--exmple-cua.example/cb",  # an IDN host as its A-label
    "https://127.0.0.1/cb",
    "https://[2001:db8::1]:443/cb",
    "http://127.0.0.1/callback",  # loopback: http allowed, port optional (RFC 8252 §7.3)
    "http://127.0.0.1:8080/callback",
    "http://[::1]/callback",
    "http://[::1]:53211/cb",
    "http://localhost/callback",
    "http://localhost:3000",
    "com.example.app:/callback",  # private-use, reverse-DNS (RFC 8252 §7.1)
    "com.example.app:/oauth2redirect/example-provider",
    "com.example.app://callback/path",
    "https://app.example/" + "a" * (MAX_REDIRECT_URI_LENGTH - len("https://app.example/")),
]


@pytest.mark.parametrize("uri", ACCEPTED)
def test_registrable_redirect_uris(uri: str) -> None:
    assert check_redirect_uri(uri) == uri


REJECTED = [
    # rule 1: length and URI characters
    ("https://app.example/" + "a" * MAX_REDIRECT_URI_LENGTH, "longer than 2000"),
    ("https://app.example/a b", "character a URI cannot"),
    ("https://app.example/\tcb", "character a URI cannot"),
    ("https://app.example/cb\n", "character a URI cannot"),
    ("https://app.example\\@evil.example/cb", "character a URI cannot"),  # backslash
    ("https://good.example\\evil.example", "character a URI cannot"),
    ("https://ex\u0430mple.com/cb", "character a URI cannot"),  # Cyrillic a: IDN look-alike
    ("https://app.example/cb%zz", "% not followed by two hexadecimal digits"),
    ("https://app.example/cb%2", "% not followed by two hexadecimal digits"),
    # rule 2: absolute, lower-case scheme and host
    ("/callback", "not an absolute URI"),
    ("app.example/callback", "not an absolute URI"),
    ("//app.example/callback", "not an absolute URI"),
    ("", "not an absolute URI"),
    ("https:", "not an absolute URI"),
    ("HTTPS://app.example/cb", "lower-case scheme"),
    ("https://App.Example/cb", "lower-case host"),
    # rule 3: no fragment
    ("https://app.example/cb#", "fragment"),
    ("https://app.example/cb#frag", "fragment"),
    # rule 4: dangerous schemes in any disguise
    ("javascript:alert(1)", "javascript: scheme is never allowed"),
    ("JaVaScRiPt:alert(1)", "javascript: scheme is never allowed"),
    ("java\tscript:alert(1)", "javascript: scheme is never allowed"),
    ("java\nscript:alert(1)", "javascript: scheme is never allowed"),
    (" javascript:alert(1)", "javascript: scheme is never allowed"),
    ("\x00javascript:alert(1)", "javascript: scheme is never allowed"),
    ("javascript\u00a0:alert(1)", "javascript: scheme is never allowed"),
    ("data:text/html,<script>alert(1)</script>", "data: scheme is never allowed"),
    ("DATA:text/html;base64,PHNjcmlwdD4=", "data: scheme is never allowed"),
    ("vbscript:msgbox(1)", "vbscript: scheme is never allowed"),
    ("file:///etc/passwd", "file: scheme is never allowed"),
    ("FiLe://host/share", "file: scheme is never allowed"),
    ("blob:https://app.example/uuid", "blob: scheme is never allowed"),
    ("about:blank", "about: scheme is never allowed"),
    # rule 5: no wildcards
    ("https://*.app.example/cb", "wildcard"),
    ("https://app.example/*", "wildcard"),
    # rule 6: https authority
    ("https:///cb", "must have a host"),
    ("https:app.example/cb", "must have a host"),
    ("https://good.example@evil.example/cb", "userinfo"),
    ("https://user:pass@app.example/cb", "userinfo"),
    ("https://app.example:0/cb", "invalid port"),
    ("https://app.example:65536/cb", "invalid port"),
    ("https://app.example:80a/cb", "invalid port"),
    ("https://app.example./cb", "invalid host"),  # trailing dot
    ("https://app..example/cb", "invalid host"),
    ("https://-app.example/cb", "invalid host"),
    ("https://app_example.com/cb", "invalid host"),
    ("https://app.example%2Fevil.example/cb", "lower-case host"),
    ("https://app.example%2fevil.example/cb", "invalid host"),
    ("https://[::1/cb", "invalid host"),
    ("https://[::1]x/cb", "invalid host"),
    ("https://[::1]:99999/cb", "invalid port"),
    ("https://[::1]:/cb", "invalid port"),
    ("https://:443/cb", "must have a host"),
    ("https://app.example/a/../b", ". or .. path segment"),
    ("https://app.example/./cb", ". or .. path segment"),
    ("https://app.example/..", ". or .. path segment"),
    # rule 7: http only to loopback
    ("http://app.example/cb", "must use https"),
    ("http://127.0.0.1.evil.example/cb", "must use https"),
    ("http://localhost.evil.example/cb", "must use https"),
    ("http://127.0.0.2/cb", "must use https"),
    ("http://0.0.0.0/cb", "must use https"),
    ("http://[::2]/cb", "must use https"),
    ("http://127.0.0.1@evil.example/cb", "userinfo"),
    # rule 8: private-use schemes are reverse-DNS, with a dot
    ("myapp:/callback", "neither https nor a private-use scheme"),
    ("myapp://callback", "neither https nor a private-use scheme"),
    ("ftp://app.example/cb", "neither https nor a private-use scheme"),
    ("com.example.app:", "not an absolute URI"),
    ("com.example.app:/cb#x", "fragment"),
    ("com.example.app://user@host/cb", "userinfo"),
    ("Com.Example.App:/cb", "lower-case scheme"),
]


@pytest.mark.parametrize(("uri", "reason"), REJECTED)
def test_unregistrable_redirect_uris_name_the_rule(uri: str, reason: str) -> None:
    with pytest.raises(InvalidRedirectUri) as caught:
        check_redirect_uri(uri)
    assert reason in str(caught.value)


MATCHES = [
    ("https://app.example/cb", "https://app.example/cb"),
    ("https://app.example/cb?x=1", "https://app.example/cb?x=1"),
    ("com.example.app:/callback", "com.example.app:/callback"),
    # Loopback: any port, or none, on either side (RFC 8252 §7.3) — the rest identical.
    ("http://127.0.0.1/callback", "http://127.0.0.1:51004/callback"),
    ("http://127.0.0.1:8080/callback", "http://127.0.0.1:9090/callback"),
    ("http://127.0.0.1:8080/callback", "http://127.0.0.1/callback"),
    ("http://[::1]/cb", "http://[::1]:65535/cb"),
    ("http://localhost/cb", "http://localhost:3000/cb"),  # localhost's port varies too
    ("http://127.0.0.1", "http://127.0.0.1:1"),
    ("http://127.0.0.1/cb?a=b", "http://127.0.0.1:4000/cb?a=b"),
]


@pytest.mark.parametrize(("registered", "presented"), MATCHES)
def test_matching_redirect_uris(registered: str, presented: str) -> None:
    assert check_redirect_uri(registered) == registered
    assert redirect_uri_matches(registered, presented)


MISMATCHES = [
    # Exact simple string comparison (RFC 3986 §6.2.1): no normalization of any kind.
    ("https://app.example/cb", "https://app.example/CB"),  # case in the path
    ("https://app.example/cb", "HTTPS://app.example/cb"),
    ("https://app.example/cb", "https://APP.example/cb"),
    ("https://app.example/cb", "https://app.example/cb/"),
    ("https://app.example/cb", "https://app.example/cb?x=1"),
    ("https://app.example/cb", "https://app.example/cb#x"),
    ("https://app.example/cb", "https://app.example:443/cb"),  # even the default port
    ("https://app.example/cb", "https://app.example./cb"),  # trailing dot host
    ("https://app.example/cb", "https://app.example/%63b"),  # percent-encoded "c"
    ("https://app.example/a/b", "https://app.example/a%2Fb"),
    ("https://app.example/cb", "https://app.example/cb/../cb"),
    ("https://app.example/cb", "https://app.example\\@evil.example/cb"),
    ("https://app.example/cb", "https://app.example@evil.example/cb"),
    ("https://app.example/cb", "https://app.example.evil.example/cb"),
    ("https://app.example/cb", "https://evil.example/cb"),
    ("https://app.example/cb", "https://app.example/cb\x00"),
    ("https://app.example/cb", " https://app.example/cb"),
    ("https://app.example", "https://app.example/"),
    ("https://app.example/cb", "https://xn--pp-hia.example/cb"),  # IDN look-alike
    ("https://app.example/cb", ""),
    # Loopback: only the port may differ.
    ("http://127.0.0.1/cb", "http://127.0.0.1.evil.example/cb"),
    ("http://127.0.0.1/cb", "http://127.0.0.1:8080@evil.example/cb"),
    ("http://127.0.0.1/cb", "http://127.0.0.1:8080.evil.example/cb"),
    ("http://127.0.0.1/cb", "http://127.0.0.1:/cb"),
    ("http://127.0.0.1/cb", "http://127.0.0.1:0/cb"),
    ("http://127.0.0.1/cb", "http://127.0.0.1:65536/cb"),
    ("http://127.0.0.1/cb", "http://127.0.0.1:123456/cb"),
    ("http://127.0.0.1/cb", "http://127.0.0.1:\uff18\uff10/cb"),  # full-width digits "80"
    ("http://127.0.0.1/cb", "http://127.0.0.1:80/CB"),
    ("http://127.0.0.1/cb", "http://127.0.0.1:80/cb/extra"),
    ("http://127.0.0.1/cb", "https://127.0.0.1:80/cb"),
    ("http://127.0.0.1/cb", "http://[::1]:80/cb"),
    ("http://127.0.0.1/cb", "http://localhost:80/cb"),
    ("http://127.0.0.1/cb", "HTTP://127.0.0.1:80/cb"),
    ("http://127.0.0.1", "http://127.0.0.1:80/anything"),
    ("http://127.0.0.1", "http://127.0.0.1:80@evil.example"),
    ("http://localhost/cb", "http://localhost.evil.example/cb"),
    ("http://[::1]/cb", "http://[::1].evil.example/cb"),
    # Private-use schemes: exact.
    ("com.example.app:/callback", "com.example.app://callback"),
    ("com.example.app:/callback", "com.example.app.evil:/callback"),
    ("com.example.app:/callback", "COM.EXAMPLE.APP:/callback"),
]


@pytest.mark.parametrize(("registered", "presented"), MISMATCHES)
def test_mismatching_redirect_uris(registered: str, presented: str) -> None:
    assert check_redirect_uri(registered) == registered
    assert not redirect_uri_matches(registered, presented)


def test_the_port_exception_is_only_for_loopback() -> None:
    assert not redirect_uri_matches("https://app.example/cb", "https://app.example:8443/cb")
    assert not redirect_uri_matches("https://127.0.0.1/cb", "https://127.0.0.1:8443/cb")
