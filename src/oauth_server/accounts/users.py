"""People who sign in: creation, profile, password, disabling, and authentication.

Every input is validated here, before any storage call: usernames have a fixed syntax and are
compared case-insensitively (stored lower-case), passwords follow
:mod:`oauth_server.accounts.passwords`, profile claims are bounded and free of control
characters.

:meth:`Accounts.authenticate` gives one answer for every failure — unknown user, wrong
password, disabled user — and costs one verification in each case (a dummy one for an
unknown user), so neither the answer nor its cost tells whether an account exists. The real
reason travels privately on the exception, for the audit trail.
"""

from __future__ import annotations

import copy
import logging
import re
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import replace
from typing import Literal, Protocol

from oauth_server.accounts.passwords import (
    PasswordHashing,
    prepare_new_password,
    prepare_presented_password,
)
from oauth_server.audit import NO_AUDIT, AuditRecorder
from oauth_server.clock import Clock
from oauth_server.storage.models import IssuedToken, User, UserProfileChanges
from oauth_server.storage.protocols import (
    BrowserSessionRepository,
    RefreshTokenRepository,
    UserRepository,
)

__all__ = [
    "MAX_USERNAME_LENGTH",
    "Accounts",
    "AuthenticationFailed",
    "FailureReason",
    "InvalidUserData",
    "TokenVoider",
    "normalize_username",
]

log = logging.getLogger(__name__)

MAX_USERNAME_LENGTH = 64
_USERNAME = re.compile(rf"[A-Za-z0-9._@-]{{1,{MAX_USERNAME_LENGTH}}}")
_MAX_CLAIM_LENGTH = 255
_MAX_EMAIL_LENGTH = 254  # RFC 5321 §4.5.3.1.3: a path is at most 256 octets, brackets included
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")

FailureReason = Literal["unknown user", "wrong password", "disabled", "unusable password"]

AccessWithdrawal = Literal["user_password_changed", "user_disabled", "user_deleted"]


class TokenVoider(Protocol):
    """Applies in this process at once what the store has just voided (the other processes
    learn it from the change feed):
    :class:`~oauth_server.oauth.tokens.voided.IssuedTokenVoider`."""

    def voided(self, tokens: Iterable[IssuedToken]) -> None: ...


class InvalidUserData(ValueError):
    """A username or profile claim that cannot be accepted; the message says why."""


class AuthenticationFailed(Exception):
    """Sign-in failed. ``str()`` is the one public answer, whatever happened; ``reason`` and
    ``user_id`` (``None`` for an unknown user) are for the audit trail only."""

    description = "wrong username or password"

    def __init__(self, reason: FailureReason, *, user_id: str | None = None) -> None:
        super().__init__(self.description)
        self.reason: FailureReason = reason
        self.user_id = user_id


def normalize_username(username: str) -> str:
    """The stored form of a username (lower-case), or :class:`InvalidUserData`."""
    if _USERNAME.fullmatch(username) is None:
        raise InvalidUserData(
            f"a username must be 1-{MAX_USERNAME_LENGTH} characters of A-Z a-z 0-9 . _ @ -"
        )
    return username.lower()  # ASCII only, so lower() is the whole case folding


def _check_claim(field: str, value: str, limit: int = _MAX_CLAIM_LENGTH) -> None:
    if len(value) > limit:
        raise InvalidUserData(f"{field} must be at most {limit} characters")
    if any(unicodedata.category(char) == "Cc" for char in value):
        raise InvalidUserData(f"{field} must not contain control characters")


def _check_profile(changes: UserProfileChanges) -> None:
    for field in ("name", "given_name", "family_name", "preferred_username"):
        value = getattr(changes, field)
        if value is not None:
            _check_claim(field, value)
    if changes.email:
        _check_claim("email", changes.email, _MAX_EMAIL_LENGTH)
        if _EMAIL.fullmatch(changes.email) is None:
            raise InvalidUserData("email must look like name@domain")


def new_user_id() -> str:
    """128 random bits: the user's ``sub``, unguessable and, in practice, never repeated."""
    return secrets.token_hex(16)


class Accounts:
    """Create and manage users, and authenticate them; changes are recorded in the audit
    trail (identifiers only: never a password or a hash)."""

    def __init__(
        self,
        users: UserRepository,
        hashing: PasswordHashing,
        *,
        clock: Clock,
        audit: AuditRecorder = NO_AUDIT,
        refresh_tokens: RefreshTokenRepository | None = None,
        sessions: BrowserSessionRepository | None = None,
        voider: TokenVoider | None = None,
    ) -> None:
        self._users = users
        self._voider = voider
        self.hashing = hashing
        self._clock = clock
        self._audit = audit
        self._refresh_tokens = refresh_tokens
        self._sessions = sessions

    def acting(self, audit: AuditRecorder) -> Accounts:
        """These accounts recording through ``audit`` (an admin request's actor)."""
        acting = copy.copy(self)
        acting._audit = audit
        return acting

    async def create(
        self,
        username: str,
        password: str,
        *,
        name: str = "",
        given_name: str = "",
        family_name: str = "",
        preferred_username: str | None = None,
        email: str = "",
        email_verified: bool = False,
        is_admin: bool = False,
    ) -> User:
        """Add a user; :class:`~oauth_server.storage.AlreadyExists` when the username is taken
        in any case. ``preferred_username`` defaults to the username as typed."""
        normalized = normalize_username(username)
        preferred = username if preferred_username is None else preferred_username
        _check_profile(
            UserProfileChanges(
                name=name,
                given_name=given_name,
                family_name=family_name,
                preferred_username=preferred,
                email=email,
            )
        )
        if email_verified and not email:
            raise InvalidUserData("email_verified needs an email")
        password_hash = await self.hashing.hash(prepare_new_password(password))
        now = int(self._clock.now())
        user = User(
            user_id=new_user_id(),
            username=normalized,
            password_hash=password_hash,
            name=name,
            given_name=given_name,
            family_name=family_name,
            preferred_username=preferred,
            email=email,
            email_verified=email_verified,
            is_admin=is_admin,
            created_at=now,
            updated_at=now,
        )
        await self._users.add(user=user)
        self._audit.record("user_created", user_id=user.user_id, username=normalized)
        if is_admin:
            self._audit.record("user_admin_granted", user_id=user.user_id, username=normalized)
        return user

    async def get(self, user_id: str) -> User | None:
        return await self._users.get(user_id=user_id)

    async def find(self, username: str) -> User | None:
        """The user of that username in any case; ``None`` also for a malformed username."""
        try:
            normalized = normalize_username(username)
        except InvalidUserData:
            return None
        return await self._users.get_by_username(username=normalized)

    async def list(
        self, *, limit: int = 100, after: str | None = None, search: str | None = None
    ) -> list[User]:
        """Up to ``limit`` users ordered by username, after the username ``after``; with
        ``search``, those whose username, name or email contains it."""
        return await self._users.list(limit=limit, after=after, search=search)

    async def update_profile(self, user_id: str, changes: UserProfileChanges) -> User | None:
        """Apply the changes (audited as ``user_updated``); ``None`` for an unknown user."""
        _check_profile(changes)
        if changes.email_verified and changes.email == "":
            raise InvalidUserData("email_verified needs an email")
        user = await self._users.update_profile(
            user_id=user_id, changes=changes, now=int(self._clock.now())
        )
        if user is not None:
            self._audit.record("user_updated", user_id=user.user_id, username=user.username)
        return user

    async def set_password(self, user_id: str, password: str) -> bool:
        """Replace the password; ``False`` for an unknown user."""
        prepared = prepare_new_password(password)
        user = await self._users.get(user_id=user_id)
        if user is None:
            return False
        password_hash = await self.hashing.hash(prepared)
        if not await self._users.set_password_hash(user_id=user_id, password_hash=password_hash):
            return False
        await self._access_withdrawn(user, "user_password_changed")
        return True

    async def set_disabled(self, user_id: str, disabled: bool) -> bool:
        """Disable or enable; ``True`` only if this call changed it."""
        user = await self._users.get(user_id=user_id)
        if user is None or not await self._users.set_disabled(user_id=user_id, disabled=disabled):
            return False
        if disabled:
            await self._access_withdrawn(user, "user_disabled")
        else:
            self._audit.record("user_enabled", user_id=user.user_id, username=user.username)
        return True

    async def set_admin(self, user_id: str, is_admin: bool) -> bool:
        """Grant or withdraw the admin flag; ``True`` only if this call changed it.

        Withdrawing it ends nothing: the user's sessions and tokens stay valid for everything
        else, and whatever serves the admin console or the admin API reads the flag on every
        request, so the withdrawal counts from the next one.
        """
        user = await self._users.get(user_id=user_id)
        if user is None or not await self._users.set_admin(user_id=user_id, is_admin=is_admin):
            return False
        if is_admin:
            self._audit.record("user_admin_granted", user_id=user.user_id, username=user.username)
        else:
            self._audit.record("user_admin_withdrawn", user_id=user.user_id, username=user.username)
        return True

    async def delete(self, user_id: str) -> bool:
        user = await self._users.get(user_id=user_id)
        if user is None or not await self._users.delete(user_id=user_id):
            return False
        await self._access_withdrawn(user, "user_deleted")
        return True

    async def _access_withdrawn(self, user: User, change: AccessWithdrawal) -> None:
        """The one place that follows a change after which the user's existing sign-ins must
        not go on: a new password, disabling, deletion.

        It ends the user's browser sessions and revokes its refresh-token families (their
        access tokens too: the store announces each on the change feed, so every server
        refuses them within the sync interval), then records the audit event — here, so that
        every path to those changes (CLI, admin API, a future self-service page) does it
        without repeating it.
        """
        now = int(self._clock.now())
        if self._sessions is not None:
            await self._sessions.end_all_for_user(user_id=user.user_id, now=now)
        if self._refresh_tokens is not None:
            revoked = await self._refresh_tokens.revoke_for_user(user_id=user.user_id, now=now)
            if self._voider is not None:
                self._voider.voided(revoked.access_tokens)
            for family_id in revoked.family_ids:
                self._audit.record(
                    "refresh_family_revoked",
                    user_id=user.user_id,
                    family_id=family_id,
                    reason=change,
                )
        self._audit.record(change, user_id=user.user_id, username=user.username)

    async def authenticate(self, username: str, password: str) -> User:
        """The user whose password this is, or :class:`AuthenticationFailed`.

        A successful login whose stored hash was made with other parameters than the current
        ones stores a new hash (argon2 ``check_needs_rehash``), unless the password was
        changed in the meantime.
        """
        presented = prepare_presented_password(password)
        if presented is None:
            raise AuthenticationFailed("unusable password")
        user = await self.find(username)
        if user is None:
            await self.hashing.dummy_verify(presented)
            raise AuthenticationFailed("unknown user")
        if not await self.hashing.verify(user.password_hash, presented):
            raise AuthenticationFailed("wrong password", user_id=user.user_id)
        if user.disabled:  # checked after the verification, which it must cost all the same
            raise AuthenticationFailed("disabled", user_id=user.user_id)
        if self.hashing.needs_rehash(user.password_hash):
            user = await self._rehash(user, presented)
        return user

    async def _rehash(self, user: User, password: str) -> User:
        password_hash = await self.hashing.hash(password)
        if await self._users.set_password_hash(
            user_id=user.user_id, password_hash=password_hash, replaces=user.password_hash
        ):
            log.info("rehashed the password of user %s with the current parameters", user.user_id)
            return replace(user, password_hash=password_hash)
        return user
