"""Request parameters at their limits, with the exact description of every refusal, and the
client-id syntax check (kills the mutants of ``oauth/params.py``; see ``make mutate``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from oauth_server.errors import InvalidRequest, InvalidTarget, OAuthError
from oauth_server.oauth.http import OAuthRequest
from oauth_server.oauth.params import (
    MAX_PARAM_LENGTH,
    MAX_PARAMS,
    parse_body,
    parse_form,
    parse_json,
    parse_query,
)


def form(content_type: str, body: bytes) -> OAuthRequest:
    return OAuthRequest("POST", "/oauth/token", headers={"content-type": content_type}, body=body)


def test_the_limits_are_inclusive() -> None:
    longest = "x" * MAX_PARAM_LENGTH
    assert parse_form(b"a=" + longest.encode()) == {"a": longest}
    most = b"&".join(b"p%d=1" % i for i in range(MAX_PARAMS))
    assert len(parse_form(most)) == MAX_PARAMS
    assert len(parse_query([(f"p{i}", "1") for i in range(MAX_PARAMS)])) == MAX_PARAMS


def test_empty_pairs_are_skipped_not_the_end() -> None:
    assert parse_form(b"&a=1&&b=2&") == {"a": "1", "b": "2"}


def test_query_parameters_follow_the_same_rules() -> None:
    assert parse_query([("a", "b"), ("c", "")]) == {"a": "b"}
    with pytest.raises(InvalidRequest) as caught:
        parse_query([("a", "1"), ("a", "2")])
    assert caught.value.description == "parameter 'a' must not be repeated"


def test_null_members_are_skipped_wherever_they_are() -> None:
    assert parse_json(b'{"scope": null, "grant_type": "client_credentials"}') == {
        "grant_type": "client_credentials"
    }


@pytest.mark.parametrize(
    ("call", "error", "description"),
    [
        # RFC 8707 §2 allows several resources; one token has one audience here.
        (
            lambda: parse_form(b"resource=a&resource=b"),
            InvalidTarget,
            "request one resource per token",
        ),
        (
            lambda: parse_query([("resource", "a"), ("resource", "b")]),
            InvalidTarget,
            "request one resource per token",
        ),
        (
            lambda: parse_form(b"scope=a&scope=b"),
            InvalidRequest,
            "parameter 'scope' must not be repeated",
        ),
        (
            lambda: parse_form(b"a=" + b"x" * (MAX_PARAM_LENGTH + 1)),
            InvalidRequest,
            "parameter 'a' is too long",
        ),
        (
            lambda: parse_form(b"&".join(b"p%d=1" % i for i in range(MAX_PARAMS + 1))),
            InvalidRequest,
            "too many parameters",
        ),
        (lambda: parse_form(b"a=%ff"), InvalidRequest, "the request body is not valid UTF-8"),
        (lambda: parse_form(b"\xff=1"), InvalidRequest, "the request body is not valid UTF-8"),
        (lambda: parse_json(b""), InvalidRequest, "the JSON body is empty"),
        (lambda: parse_json(b"{"), InvalidRequest, "the request body is not valid JSON"),
        (lambda: parse_json(b"[1]"), InvalidRequest, "the JSON body must be an object"),
        (
            lambda: parse_json(b'{"a": "1", "a": "1"}'),
            InvalidRequest,
            "a JSON member must not be repeated",
        ),
        (
            lambda: parse_json(b'{"\\ud800": "x"}'),
            InvalidRequest,
            "a JSON member name is not valid Unicode",
        ),
        (
            lambda: parse_json(b'{"a": "\\ud800"}'),
            InvalidRequest,
            "parameter 'a' is not valid Unicode",
        ),
        (lambda: parse_json(b'{"a": 1}'), InvalidRequest, "parameter 'a' must be a string"),
        (
            lambda: parse_body(form("text/plain", b"a=b")),
            InvalidRequest,
            "the request body must be application/x-www-form-urlencoded",
        ),
        (
            lambda: parse_body(form("text/plain", b"a=b"), allow_json=True),
            InvalidRequest,
            "the request body must be application/x-www-form-urlencoded or application/json",
        ),
        # JSON only where it is allowed (the token endpoint): not by default.
        (
            lambda: parse_body(form("application/json", b'{"a": "b"}')),
            InvalidRequest,
            "the request body must be application/x-www-form-urlencoded",
        ),
    ],
)
def test_every_refusal_says_why(
    call: Callable[[], object], error: type[OAuthError], description: str
) -> None:
    with pytest.raises(OAuthError) as caught:
        call()
    assert type(caught.value) is error
    assert caught.value.description == description
