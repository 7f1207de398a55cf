"""Split opaque tokens: format, ordering, strict parsing."""

from __future__ import annotations

import base64

import pytest

from oauth_server.crypto import SELECTOR_BYTES, new_split_token, parse_split_token


def test_round_trip() -> None:
    token = new_split_token(1_800_000_000.5)
    parsed = parse_split_token(token.value)
    assert parsed == (token.selector, token.verifier_hash)
    assert len(token.selector) == SELECTOR_BYTES
    assert token.selector[:6] == (1_800_000_000_500).to_bytes(6, "big")


def test_selectors_follow_issue_time() -> None:
    earlier, later = new_split_token(1000.0), new_split_token(1000.002)
    assert earlier.selector < later.selector


def test_tokens_differ() -> None:
    assert len({new_split_token(1.0).value for _ in range(100)}) == 100


@pytest.mark.parametrize(
    "value",
    ["", "short", "x" * 58, "x" * 60, "!" * 59, "a.b.c", "é" * 59],
)
def test_malformed(value: str) -> None:
    assert parse_split_token(value) is None


def test_non_canonical_spelling_is_rejected() -> None:
    value = new_split_token(1.0).value
    raw = base64.urlsafe_b64decode(value + "=")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(value[-1])
    twin = value[:-1] + alphabet[last ^ 1]  # flips an unused trailing bit
    assert base64.urlsafe_b64decode(twin + "=") == raw
    assert parse_split_token(twin) is None
