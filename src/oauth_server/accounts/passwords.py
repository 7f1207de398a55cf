"""User passwords: the policy, and argon2id hashing off the event loop with bounded concurrency.

An argon2id hash takes tens of milliseconds of CPU and megabytes of memory by design. Run on
the event loop, every login would stall every request in flight; run on an unbounded pool,
a burst of logins would take every core and all that memory. So each hash and verification
runs on a small dedicated thread pool, and at most ``concurrency`` of them run at once (an
``asyncio.Semaphore``: further callers wait on the loop, cancellable, holding no thread). A
slot is given back only when its thread has finished, so the bound holds even when a
waiting login is cancelled mid-hash. argon2-cffi releases the GIL while it hashes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import secrets
import unicodedata
from collections.abc import Callable
from contextlib import suppress
from typing import Protocol, TypeVar

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = [
    "MAX_PASSWORD_BYTES",
    "MIN_PASSWORD_LENGTH",
    "Argon2Hasher",
    "Hasher",
    "InvalidPassword",
    "PasswordHashing",
    "prepare_new_password",
    "prepare_presented_password",
]

T = TypeVar("T")

MIN_PASSWORD_LENGTH = 8
"""Characters, after normalization (NIST SP 800-63B §3.1.1.2: at least 8)."""
MAX_PASSWORD_BYTES = 1024
"""UTF-8 bytes, after normalization: bounds what one login can make the server hash."""


class InvalidPassword(ValueError):
    """A new password that the policy refuses; the message says why (never the password)."""


def _normalize(password: str) -> str:
    # NIST SP 800-63B §3.1.1.2: normalize Unicode (NFKC), so that the same password typed on
    # two keyboards or systems that compose characters differently is the same password.
    return unicodedata.normalize("NFKC", password)


def prepare_new_password(password: str) -> str:
    """The normalized form of a password being set, or :class:`InvalidPassword`."""
    if len(password) > MAX_PASSWORD_BYTES:  # bound the work before normalizing
        raise InvalidPassword(f"a password must be at most {MAX_PASSWORD_BYTES} bytes")
    if "\0" in password:
        raise InvalidPassword("a password must not contain a NUL character")
    normalized = _normalize(password)
    if len(normalized.encode("utf-8")) > MAX_PASSWORD_BYTES:
        raise InvalidPassword(f"a password must be at most {MAX_PASSWORD_BYTES} bytes")
    if len(normalized) < MIN_PASSWORD_LENGTH:
        raise InvalidPassword(f"a password must be at least {MIN_PASSWORD_LENGTH} characters")
    return normalized


def prepare_presented_password(password: str) -> str | None:
    """The normalized form of a password presented at login, or ``None`` when no stored
    password can be it (empty, too long, a NUL): such a login fails without hashing anything,
    whoever the user, so it says nothing about the account. Short passwords are still checked:
    the minimum length is a rule for new passwords, not a filter on logins."""
    if not password or len(password) > MAX_PASSWORD_BYTES or "\0" in password:
        return None
    normalized = _normalize(password)
    return normalized if len(normalized.encode("utf-8")) <= MAX_PASSWORD_BYTES else None


class Hasher(Protocol):
    """A synchronous password hasher (called on worker threads only)."""

    def hash(self, password: str) -> str: ...
    def verify(self, password_hash: str, password: str) -> bool:
        """``True`` if ``password`` matches; ``False`` for a mismatch or a malformed hash."""
        ...

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether the hash was made with other parameters than this hasher's (cheap: it only
        parses the hash's parameters)."""
        ...


class Argon2Hasher:
    """argon2id through argon2-cffi (PHC string format: algorithm, parameters, salt, hash)."""

    def __init__(self, *, time_cost: int, memory_cost: int, parallelism: int) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
            type=Type.ID,
        )

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True


class PasswordHashing:
    """Hash and verify off the event loop, at most ``concurrency`` at a time.

    ``dummy_verify`` checks a password against a hash of a random password made with the
    current parameters (computed once, on first use, or by :meth:`warm_up`): a login for an
    unknown user costs what a login with a wrong password costs.
    """

    def __init__(self, hasher: Hasher, *, concurrency: int = 2) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.hasher = hasher
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=concurrency, thread_name_prefix="password-hash"
        )
        self._slots = asyncio.Semaphore(concurrency)
        self._dummy_hash: str | None = None

    async def hash(self, password: str) -> str:
        return await self._run(self.hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        return await self._run(self.hasher.verify, password_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        return self.hasher.needs_rehash(password_hash)

    async def dummy_verify(self, password: str) -> None:
        """Spend a verification's work on nothing (the result is always a failure)."""
        await self.verify(await self._dummy(), password)

    async def warm_up(self) -> None:
        """Compute the dummy hash now, so the first unknown-user login costs no extra hash."""
        await self._dummy()

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await self.hash(secrets.token_urlsafe(32))
        return self._dummy_hash

    async def _run(self, work: Callable[..., T], *args: str) -> T:
        await self._slots.acquire()
        loop = asyncio.get_running_loop()
        try:
            future = self._executor.submit(work, *args)
        except BaseException:
            self._slots.release()
            raise
        # Released when the thread is done, not when the caller stops waiting: a cancelled
        # caller cannot stop a hash in progress, and its slot stays taken until it ends.
        future.add_done_callback(lambda _: _release_from_thread(loop, self._slots))
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        """Stop the worker threads (a hash in progress finishes; queued ones are dropped)."""
        self._executor.shutdown(wait=False, cancel_futures=True)


def _release_from_thread(loop: asyncio.AbstractEventLoop, slots: asyncio.Semaphore) -> None:
    with suppress(RuntimeError):  # the loop is closed: nobody is left waiting for a slot
        loop.call_soon_threadsafe(slots.release)
