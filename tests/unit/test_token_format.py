"""The checksummed token format (oauth/tokens/format.py): what the server minted parses, anything
else — another key's, a flipped bit, truncated, another kind's prefix, a non-canonical spelling —
is refused by the codec alone, and the legacy format still parses within its lifetime window."""

from __future__ import annotations

import base64
import hashlib
import hmac
from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from oauth_server.clock import FrozenClock
from oauth_server.crypto import new_split_token
from oauth_server.oauth.tokens import format as token_format
from oauth_server.oauth.tokens.format import PREFIXES, TokenCodec, TokenKind
from tests.helpers import TEST_SECRET_KEY, opaque_parts, token_codec

NOW = 1_800_000_000.25
KINDS: list[TokenKind] = ["access_token", "refresh_token", "authorization_code"]
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def codec(*, accept_legacy: bool = True, max_age: int = 3600) -> TokenCodec:
    return TokenCodec(
        TEST_SECRET_KEY,
        clock=FrozenClock(NOW),
        legacy_max_age=dict.fromkeys(PREFIXES, max_age),
        accept_legacy=accept_legacy,
    )


def flip_char(value: str, index: int) -> str:
    """``value`` with the character at ``index`` replaced by its base64url neighbour (one bit
    of the decoded bytes flipped)."""
    char = value[index]
    return value[:index] + ALPHABET[ALPHABET.index(char) ^ 1] + value[index + 1 :]


@pytest.mark.parametrize("kind", KINDS)
def test_a_minted_token_parses_to_its_selector_and_verifier_hash(kind: TokenKind) -> None:
    token = codec().mint(kind, NOW)
    assert token.value.startswith(PREFIXES[kind])
    assert len(token.value) == len(PREFIXES[kind]) + 67
    assert token.selector[:6] == int(NOW * 1000).to_bytes(6, "big")  # time-ordered, as before
    assert codec().parse(kind, token.value) == (token.selector, token.verifier_hash)
    # Another instance sharing the secret key accepts it.
    assert token_codec(FrozenClock(0)).parse(kind, token.value) is not None


def test_the_checksum_is_hmac_sha256_under_the_hkdf_derived_key() -> None:
    """The documented format, byte for byte: base64url(selector ‖ verifier ‖ the first 6 bytes
    of HMAC-SHA256(HKDF-SHA256(secret, info="oauth-server/token-checksum/v1"), prefix ‖
    selector ‖ verifier))."""
    token = codec().mint("access_token", NOW)
    prefix, raw = opaque_parts(token.value)
    assert prefix == "pos_at_"
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"oauth-server/token-checksum/v1"
    ).derive(TEST_SECRET_KEY)
    payload = raw[:44]
    assert raw[44:] == hmac.new(key, b"pos_at_" + payload, hashlib.sha256).digest()[:6]
    assert token.verifier_hash == hashlib.sha256(raw[12:44]).digest()


def test_tokens_differ() -> None:
    assert len({codec().mint("access_token", NOW).value for _ in range(100)}) == 100


@pytest.mark.parametrize("kind", KINDS)
def test_another_keys_token_is_refused(kind: TokenKind) -> None:
    other = TokenCodec(
        b"another-secret-key-of-at-least-32-chars",
        clock=FrozenClock(NOW),
        legacy_max_age=dict.fromkeys(PREFIXES, 3600),
        accept_legacy=True,
    )
    assert codec().parse(kind, other.mint(kind, NOW).value) is None


@pytest.mark.parametrize(
    "index",
    [7, 20, 30, 50, 64, 65],  # in the selector, the verifier, and the checksum's characters
)
def test_a_flipped_bit_anywhere_is_refused(index: int) -> None:
    value = codec().mint("access_token", NOW).value
    assert codec().parse("access_token", flip_char(value, index)) is None


def test_every_bit_of_the_checksum_counts() -> None:
    value = codec().mint("refresh_token", NOW).value
    prefix, raw = opaque_parts(value)
    for bit in range(48):
        forged = bytearray(raw)
        forged[44 + bit // 8] ^= 1 << (bit % 8)
        spelled = prefix + base64.urlsafe_b64encode(bytes(forged)).rstrip(b"=").decode()
        assert codec().parse("refresh_token", spelled) is None, bit


@pytest.mark.parametrize("cut", [1, 2, 8, 40, 67])
def test_a_truncated_or_extended_token_is_refused(cut: int) -> None:
    value = codec().mint("authorization_code", NOW).value
    assert codec().parse("authorization_code", value[:-cut]) is None
    assert codec().parse("authorization_code", value + value[-cut:]) is None


@pytest.mark.parametrize("minted", KINDS)
@pytest.mark.parametrize("presented_as", KINDS)
def test_another_kinds_token_is_refused_even_with_its_prefix_swapped(
    minted: TokenKind, presented_as: TokenKind
) -> None:
    if minted == presented_as:
        return
    value = codec().mint(minted, NOW).value
    assert codec().parse(presented_as, value) is None
    # The prefix is inside the checksum: relabelling the token does not make it the other kind.
    relabelled = PREFIXES[presented_as] + value[len(PREFIXES[minted]) :]
    assert codec().parse(presented_as, relabelled) is None


def test_a_non_canonical_spelling_is_refused() -> None:
    value = codec().mint("access_token", NOW).value
    raw = opaque_parts(value)[1]
    last = ALPHABET.index(value[-1])
    twin = value[:-1] + ALPHABET[last ^ 1]  # flips one of the two unused trailing bits
    assert opaque_parts(twin)[1] == raw
    assert codec().parse("access_token", twin) is None


@pytest.mark.parametrize(
    "value",
    ["", "pos_at_", "pos_at_" + "!" * 67, "pos_at_" + "é" * 67, "a.b.c", "x" * 74, "POS_AT_" * 10],
)
def test_garbage_is_refused(value: str) -> None:
    assert codec().parse("access_token", value) is None


def test_the_checksum_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(
        token_format, "hmac", SimpleNamespace(compare_digest=recording, new=hmac.new)
    )
    value = codec().mint("access_token", NOW).value
    assert codec().parse("access_token", value) is not None
    assert codec().parse("access_token", flip_char(value, 65)) is None
    assert len(compared) == 2
    assert all(len(a) == len(b) == 6 for a, b in compared)


@pytest.mark.parametrize("kind", KINDS)
def test_a_legacy_token_within_its_kinds_lifetime_parses(kind: TokenKind) -> None:
    old = new_split_token(NOW - 3000)
    assert codec(max_age=3600).parse(kind, old.value) == (old.selector, old.verifier_hash)


@pytest.mark.parametrize(
    ("issued", "parses"),
    [
        (NOW - 3600 - 300, True),  # its lifetime, plus the clock skew allowed between instances
        (NOW - 3600 - 301, False),  # certainly expired: refused unread
        (NOW + 300, True),
        (NOW + 301, False),  # ahead of any instance's clock: never minted
        (0.0, False),
    ],
)
def test_a_legacy_token_outside_its_lifetime_window_is_refused(issued: float, parses: bool) -> None:
    old = new_split_token(issued)
    assert (codec(max_age=3600).parse("refresh_token", old.value) is not None) is parses


def test_legacy_tokens_can_be_turned_off() -> None:
    old = new_split_token(NOW)
    assert codec(accept_legacy=False).parse("access_token", old.value) is None
    current = codec(accept_legacy=False).mint("access_token", NOW)
    assert codec(accept_legacy=False).parse("access_token", current.value) is not None


def test_characters_outside_the_alphabet_are_refused_even_under_a_valid_checksum() -> None:
    """base64 decoding skips characters outside the alphabet; a value with three of them (and
    a checksum the server's key made over the shorter payload) is still not a token."""
    minter = codec()
    for attempt in range(64):
        payload = bytes([attempt]) * 42
        raw = payload + minter._checksum(b"pos_at_", payload)
        encoded = base64.urlsafe_b64encode(raw).decode()  # 64 characters, no padding
        if encoded[-1] in "AEIMQUYcgkosw048":
            break
    value = "pos_at_" + encoded[:30] + "!*!" + encoded[30:]
    assert len(value) == 74
    assert codec().parse("access_token", value) is None
