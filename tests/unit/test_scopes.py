from __future__ import annotations

import pytest

from oauth_server.errors import InvalidScope
from oauth_server.oauth.scopes import MAX_SCOPES, parse_scope, resolve_scope

ALLOWED = frozenset({"a", "b", "c"})


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, ()), ("", ()), ("a", ("a",)), ("a b", ("a", "b")), ("b  a b", ("b", "a"))],
)
def test_parse(value: str | None, expected: tuple[str, ...]) -> None:
    assert parse_scope(value) == expected


@pytest.mark.parametrize("value", ['a"b', "a\\b", "é", "a\tb", "a\nb", "x" * 129])
def test_malformed(value: str) -> None:
    with pytest.raises(InvalidScope):
        parse_scope(value)


def test_too_many() -> None:
    with pytest.raises(InvalidScope, match="at most"):
        parse_scope(" ".join(f"s{i}" for i in range(MAX_SCOPES + 1)))


def test_resolve_requested_within_allowed() -> None:
    assert resolve_scope("b a", allowed=ALLOWED, default=("c",)) == ("b", "a")


def test_resolve_default_when_omitted() -> None:
    assert resolve_scope(None, allowed=ALLOWED, default=("c",)) == ("c",)


def test_resolve_refuses_beyond_allowed() -> None:
    with pytest.raises(InvalidScope, match="not allowed"):
        resolve_scope("a z", allowed=ALLOWED, default=())


def test_resolve_refuses_when_nothing_to_grant() -> None:
    with pytest.raises(InvalidScope, match="no scope"):
        resolve_scope(None, allowed=ALLOWED, default=())
