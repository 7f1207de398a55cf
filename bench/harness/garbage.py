"""Tokens the server never minted, for the "garbage costs nothing" scenarios (issue 11 item 3).

What anyone without the server's secret key can send (``oauth_server.oauth.tokens.format``):

- *unknown*: well-formed tokens of the current format whose checksum is another key's;
- *random*: the kind's prefix and 67 random base64url characters;
- *truncated*: a real token missing its last characters;
- *forged*: a real token with one bit of its secret part flipped (its checksum then fails);
- *legacy unknown*: tokens of the format before the checksum (59 characters) issued "now", which
  the server still looks up while ``OAUTH_SERVER_ACCEPT_LEGACY_TOKENS`` is on — the one kind
  here that costs a database read, measured to show what the transition period costs.
"""

import base64
import random
import secrets
import time
from collections.abc import Sequence
from pathlib import Path

from oauth_server.clock import SystemClock
from oauth_server.crypto import new_split_token
from oauth_server.oauth.tokens.format import PREFIXES, TokenCodec, TokenKind

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
COUNT = 10_000


def _foreign_codec() -> TokenCodec:
    return TokenCodec(
        secrets.token_bytes(32),
        clock=SystemClock(),
        legacy_max_age=dict.fromkeys(PREFIXES, 3600),
        accept_legacy=True,
    )


def unknown(kind: TokenKind, count: int = COUNT) -> list[str]:
    codec, now = _foreign_codec(), time.time()
    return [codec.mint(kind, now).value for _ in range(count)]


def random_values(kind: TokenKind, count: int = COUNT) -> list[str]:
    rng = random.Random(11)
    return [PREFIXES[kind] + "".join(rng.choices(ALPHABET, k=67)) for _ in range(count)]


def truncated(known: str, count: int = COUNT) -> list[str]:
    return [known[: -1 - i % 40] for i in range(count)]


def forged(known: str, count: int = COUNT) -> list[str]:
    """``known`` with one bit of its secret part flipped, a different bit each."""
    prefix = next(p for p in PREFIXES.values() if known.startswith(p))
    body = known[len(prefix) :]
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    values = []
    for i in range(count):
        changed = bytearray(raw)
        bit = i % (32 * 8)
        changed[12 + bit // 8] ^= 1 << (bit % 8)
        values.append(prefix + base64.urlsafe_b64encode(bytes(changed)).rstrip(b"=").decode())
    return values


def legacy_unknown(count: int = COUNT) -> list[str]:
    """Old-format tokens issued over the last minute: inside every kind's lifetime window."""
    now, rng = time.time(), random.Random(7)
    return [new_split_token(now - rng.uniform(0, 60)).value for _ in range(count)]


def mixed(known: str | None, kind: TokenKind, count: int = COUNT) -> list[str]:
    """Unknown, random, truncated and forged values in turn (the last two from ``known``, or
    from an unknown token of ``kind`` when there is no real one)."""
    base = known or unknown(kind, 1)[0]
    sets: Sequence[list[str]] = (
        unknown(kind, count // 4),
        random_values(kind, count // 4),
        truncated(base, count // 4),
        forged(base, count // 4),
    )
    return [value for group in zip(*sets, strict=True) for value in group]


def write(path: Path, values: Sequence[str]) -> Path:
    path.write_text("\n".join(values) + "\n")
    return path
