"""Random values and their at-rest forms. Nothing here hand-rolls a primitive: ``secrets`` for
randomness, ``hashlib`` SHA-256 for hashing high-entropy values, ``hmac.compare_digest`` for
constant-time comparison.

A SHA-256 is the right at-rest form for server-generated secrets and tokens: they carry 256
bits of entropy, so a preimage search is hopeless and a slow password hash would only cost every
request latency (RFC 9700 §4.14 / OAuth 2.1 §7.7 ask for ≥ 128 bits of unguessability).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = [
    "DUMMY_SECRET_HASH",
    "hash_secret",
    "hash_token",
    "new_secret",
    "new_token",
    "verify_secret",
]

_SECRET_SCHEME = "sha256$"


def new_token(nbytes: int = 32) -> str:
    """A URL-safe random token (default 256 bits)."""
    return secrets.token_urlsafe(nbytes)


def new_secret() -> str:
    """A client secret of 256 bits, URL-safe so it survives Basic and form encoding as is."""
    return secrets.token_urlsafe(32)


def hash_token(value: str) -> bytes:
    """The SHA-256 digest under which an opaque token is stored and looked up."""
    return hashlib.sha256(value.encode("utf-8")).digest()


def hash_secret(secret: str) -> str:
    """The stored form of a client secret."""
    return _SECRET_SCHEME + hashlib.sha256(secret.encode("utf-8")).hexdigest()


def verify_secret(secret: str, stored: str) -> bool:
    """Constant-time check of ``secret`` against its stored form."""
    candidate = hash_secret(secret)
    return hmac.compare_digest(candidate.encode("ascii"), stored.encode("ascii", "replace"))


# Compared against when the client is unknown, so unknown and wrong cost the same time.
DUMMY_SECRET_HASH = hash_secret(secrets.token_urlsafe(32))
