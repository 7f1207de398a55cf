"""The wire format of opaque access tokens, refresh tokens and authorization codes: a prefix
naming the kind, then the split token (:class:`~oauth_server.crypto.SplitToken`) and a short
checksum keyed by the server, so that what the server never minted is refused without a
database read.

    pos_at_<base64url(selector ‖ verifier ‖ checksum)>     access token        (74 characters)
    pos_rt_<…>                                              refresh token
    pos_ac_<…>                                              authorization code

``selector`` (12 bytes, starting with the issue time in milliseconds) finds the row and
``verifier`` (32 random bytes) is the secret, stored only as its SHA-256 — both as before.
``checksum`` is the first 6 bytes (48 bits) of HMAC-SHA256 over the prefix, selector and
verifier, under a key derived with HKDF-SHA256 from ``OAUTH_SERVER_SECRET_KEY`` (``info``
``oauth-server/token-checksum/v1``): every instance sharing the secret key accepts every other's
tokens. The checksum is compared in constant time. Because the prefix is inside the MAC, a token
of one kind presented as another fails it too.

What the checksum is and is not: a filter, not the authentication. A token passes only if the
database holds its selector with the SHA-256 of its verifier, as before; the checksum only decides
whether the database is asked at all. Forging one that passes costs an attacker 2^48 tries on
average, and one that passes still meets the verifier's 256-bit check. Knowing the checksum key
would let someone make tokens that cost a lookup each — never one that is accepted.

Tokens of the format before this one (59 characters: selector ‖ verifier, no prefix, no
checksum) keep working until they expire, read from the database like before; a legacy value
whose embedded issue time lies outside the kind's longest lifetime (or ahead of the clock) cannot
be live and is refused without a read, so random legacy-shaped strings cost nothing either.
``accept_legacy=False`` (``OAUTH_SERVER_ACCEPT_LEGACY_TOKENS``) refuses the old format outright,
once every token of it has expired.

The prefixes also let secret scanners (GitHub's secret scanning, gitleaks) recognise a leaked
token of this server by its shape.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Mapping
from typing import Final, Literal

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from oauth_server.clock import Clock
from oauth_server.crypto import SELECTOR_BYTES, SplitToken, parse_split_token

__all__ = ["CHECKSUM_BYTES", "PREFIXES", "TokenCodec", "TokenKind"]

TokenKind = Literal["access_token", "refresh_token", "authorization_code"]

PREFIXES: Final[Mapping[TokenKind, str]] = {
    "access_token": "pos_at_",
    "refresh_token": "pos_rt_",
    "authorization_code": "pos_ac_",
}
CHECKSUM_BYTES: Final = 6
_VERIFIER_BYTES = 32
_RAW_BYTES = SELECTOR_BYTES + _VERIFIER_BYTES + CHECKSUM_BYTES  # 50
_BODY_LENGTH = (_RAW_BYTES * 8 + 5) // 6  # base64url, unpadded: 67
_PADDING = "=" * (-_BODY_LENGTH % 4)
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# The last character carries 2 bits beyond the 50 bytes; the one spelling of a token has them 0.
_LAST_CHARACTERS = frozenset(_ALPHABET[::4])
_HKDF_INFO = b"oauth-server/token-checksum/v1"
_CLOCK_SKEW = 300  # seconds between the clocks of the instance that minted and this one


class TokenCodec:
    """Mints tokens of the current format and parses both formats into ``(selector, SHA-256
    of the verifier)``, or ``None`` for anything the store cannot hold."""

    def __init__(
        self,
        secret: bytes,
        *,
        clock: Clock,
        legacy_max_age: Mapping[TokenKind, int],
        accept_legacy: bool,
    ) -> None:
        """``legacy_max_age``: per kind, the seconds after its issue time beyond which no token
        of that kind can be live (its longest configured lifetime); ``accept_legacy``: whether
        tokens of the old format are parsed at all."""
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(secret)
        # Keyed once; each checksum copies it (half the cost of hmac.digest with the key).
        self._mac = hmac.new(key, digestmod=hashlib.sha256)
        self._clock = clock
        self._legacy_max_age = dict(legacy_max_age)
        self._accept_legacy = accept_legacy
        self._prefixes = {kind: prefix.encode("ascii") for kind, prefix in PREFIXES.items()}

    def _checksum(self, prefix: bytes, payload: bytes) -> bytes:
        mac = self._mac.copy()
        mac.update(prefix + payload)
        return mac.digest()[:CHECKSUM_BYTES]

    def mint(self, kind: TokenKind, now: float) -> SplitToken:
        """A new token of ``kind``, issued at ``now``."""
        randomness = os.urandom(SELECTOR_BYTES - 6 + _VERIFIER_BYTES)
        selector = int(now * 1000).to_bytes(6, "big") + randomness[: SELECTOR_BYTES - 6]
        verifier = randomness[SELECTOR_BYTES - 6 :]
        prefix = self._prefixes[kind]
        payload = selector + verifier
        body = base64.urlsafe_b64encode(payload + self._checksum(prefix, payload)).rstrip(b"=")
        value = (prefix + body).decode("ascii")
        return SplitToken(value, selector, hashlib.sha256(verifier).digest())

    def parse(self, kind: TokenKind, value: str) -> tuple[bytes, bytes] | None:
        """``(selector, SHA-256 of the verifier)`` of a token of ``kind`` that this server may
        have minted; ``None`` for anything else (no database read needed to refuse it)."""
        prefix = PREFIXES[kind]
        if value.startswith(prefix):
            return self._parse_current(self._prefixes[kind], value[len(prefix) :])
        if self._accept_legacy:
            return self._parse_legacy(kind, value)
        return None

    def _parse_current(self, prefix: bytes, body: str) -> tuple[bytes, bytes] | None:
        # Exactly one spelling per token: reject strings that differ only in unused trailing bits.
        if len(body) != _BODY_LENGTH or body[-1] not in _LAST_CHARACTERS:
            return None
        try:
            raw = base64.urlsafe_b64decode(body + _PADDING)
        except (binascii.Error, ValueError):  # a non-ASCII character is a ValueError
            return None
        if len(raw) != _RAW_BYTES:  # a character outside the alphabet was skipped
            return None
        payload, checksum = raw[:-CHECKSUM_BYTES], raw[-CHECKSUM_BYTES:]
        if not hmac.compare_digest(self._checksum(prefix, payload), checksum):
            return None
        return payload[:SELECTOR_BYTES], hashlib.sha256(payload[SELECTOR_BYTES:]).digest()

    def _parse_legacy(self, kind: TokenKind, value: str) -> tuple[bytes, bytes] | None:
        parsed = parse_split_token(value)
        if parsed is None:
            return None
        issued = int.from_bytes(parsed[0][:6], "big") / 1000
        now = self._clock.now()
        if issued > now + _CLOCK_SKEW or issued + self._legacy_max_age[kind] + _CLOCK_SKEW < now:
            return None  # cannot be live: not worth a lookup
        return parsed
