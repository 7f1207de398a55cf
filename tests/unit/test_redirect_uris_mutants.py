"""Redirect URI rules at their edges, each refusal with its whole message (the message is what
an operator registering a client reads), and the authority, port and path splitting one
character either side of where it decides (kills the mutants of ``oauth/redirect_uris.py``;
see ``make mutate``)."""

from __future__ import annotations

import pytest

from oauth_server.oauth.redirect_uris import (
    InvalidRedirectUri,
    check_redirect_uri,
    redirect_uri_matches,
)

INVALID_HOST = (
    "has an invalid host (letters, digits and hyphens in dot-separated labels, no trailing "
    "dot, or an IP literal)"
)

MESSAGES = [
    ("https://app.example/" + "a" * 2000, "is longer than 2000 characters"),
    ("javascript:alert(1)", "the javascript: scheme is never allowed"),
    (
        "https://app.example/a b",
        "contains a character a URI cannot (whitespace, control, backslash, quote, non-ASCII: "
        "write an international host name as its xn-- form)",
    ),
    ("https://app.example/%zz", "has a % not followed by two hexadecimal digits"),
    ("https://app.example/#x", "has a fragment (#…), which RFC 6749 §3.1.2 forbids"),
    ("https://app.example/*", "has a wildcard (*): register each redirect URI exactly"),
    ("/callback", "is not an absolute URI (scheme:…)"),
    ("HTTPS://app.example/cb", "must have a lower-case scheme"),
    ("https:app.example/cb", "must have a host (https://host/…)"),
    ("https://u@app.example/cb", "must not have userinfo (user@host)"),
    ("https://app.example:0/cb", "has an invalid port"),
    ("https:///cb", "must have a host"),
    ("https://App.example/cb", "must have a lower-case host"),
    ("https://app.example./cb", INVALID_HOST),
    ("https://app.example/a/../b", "has a . or .. path segment"),
    (
        "http://app.example/cb",
        "must use https (http only for a loopback host: 127.0.0.1, [::1] or localhost)",
    ),
    (
        "myapp:/cb",
        "uses the scheme myapp:, which is neither https nor a private-use scheme in reverse-DNS "
        "form with a dot (com.example.app:/callback, RFC 8252 §7.1)",
    ),
    ("com.example.app://u@host/cb", "must not have userinfo (user@host)"),
]


@pytest.mark.parametrize(("uri", "message"), MESSAGES)
def test_each_refusal_says_its_rule_in_full(uri: str, message: str) -> None:
    with pytest.raises(InvalidRedirectUri) as caught:
        check_redirect_uri(uri)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        # A one-character userinfo right after "//" is userinfo too.
        ("com.example.app://@host/cb", "must not have userinfo (user@host)"),
        # "X" is a host character, never an authority delimiter: the upper case is seen.
        ("https://eXample.com/cb", "must have a lower-case host"),
        # The first "]" closes an IPv6 literal: what follows it is the port.
        ("https://[::1]:8]0/cb", "has an invalid port"),
        # An empty literal "[]" is still split from its port, and the port checked first.
        ("https://[]:0/cb", "has an invalid port"),
        ("https://[]:80/cb", INVALID_HOST),
        ("https://[::1", INVALID_HOST),
    ],
)
def test_authority_splitting_at_its_edges(uri: str, message: str) -> None:
    with pytest.raises(InvalidRedirectUri) as caught:
        check_redirect_uri(uri)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example:1/cb",  # the lowest port
        "https://app.example:65535/cb",  # the highest
        # The dot segments rule is for the path: a query may hold "/../" (the first "?" ends
        # the path, later ones are the query's).
        "https://app.example/cb?next=/../x?y=/./",
        "https://app.example?x=/../",
    ],
)
def test_edges_that_are_accepted(uri: str) -> None:
    assert check_redirect_uri(uri) == uri


def test_the_loopback_port_exception_needs_a_path_or_query_after_the_port() -> None:
    # Even if a stored URI broke the registration rules, a loopback match only ever ignores a
    # ":port" followed by nothing, "/" or "?": "X" ends no host.
    assert not redirect_uri_matches("http://localhostX/cb", "http://localhost:80X/cb")
    assert redirect_uri_matches("http://localhost/cb", "http://localhost:80/cb")
    assert redirect_uri_matches("http://localhost?x", "http://localhost:80?x")
