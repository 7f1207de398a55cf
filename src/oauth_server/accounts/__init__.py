"""Accounts of people who sign in: users with argon2id password hashes, hashed off the loop.

Browser sessions and consents (the rest of the sign-in work) will live here too.
"""

from __future__ import annotations

from oauth_server.accounts.passwords import (
    MAX_PASSWORD_BYTES,
    MIN_PASSWORD_LENGTH,
    Argon2Hasher,
    Hasher,
    InvalidPassword,
    PasswordHashing,
)
from oauth_server.accounts.users import (
    MAX_USERNAME_LENGTH,
    Accounts,
    AuthenticationFailed,
    FailureReason,
    InvalidUserData,
    normalize_username,
)

__all__ = [
    "MAX_PASSWORD_BYTES",
    "MAX_USERNAME_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "Accounts",
    "Argon2Hasher",
    "AuthenticationFailed",
    "FailureReason",
    "Hasher",
    "InvalidPassword",
    "InvalidUserData",
    "PasswordHashing",
    "normalize_username",
]
