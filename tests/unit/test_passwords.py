"""Password policy and hashing: argon2id through argon2-cffi, off the event loop, at most
``concurrency`` hashes at a time — shown with fake hashers that record what they are asked,
never with timings."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

import pytest
from argon2 import Type, extract_parameters

from oauth_server.accounts import (
    MAX_PASSWORD_BYTES,
    Argon2Hasher,
    InvalidPassword,
    PasswordHashing,
)
from oauth_server.accounts.passwords import prepare_new_password, prepare_presented_password
from tests.helpers import eventually

CHEAP = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("", "at least 8"),
        ("seven77", "at least 8"),
        ("x" * (MAX_PASSWORD_BYTES + 1), "at most 1024 bytes"),
        ("é" * 600, "at most 1024 bytes"),  # 600 characters, 1200 bytes
        ("\ufdfa" * 60, "at most 1024 bytes"),  # NFKC expands each to 18 characters
        ("password\0with nul", "NUL"),
    ],
)
def test_new_passwords_the_policy_refuses(password: str, problem: str) -> None:
    with pytest.raises(InvalidPassword, match=problem) as caught:
        prepare_new_password(password)
    assert password not in str(caught.value) or not password


@pytest.mark.parametrize(
    "password",
    ["eight888", "x" * MAX_PASSWORD_BYTES, "correct horse battery staple", "pässwörd-ünïcode"],
)
def test_new_passwords_the_policy_accepts(password: str) -> None:
    assert prepare_new_password(password) == password


def test_passwords_are_nfkc_normalized_before_hashing() -> None:
    composed, decomposed = "caf\u00e9-password", "cafe\u0301-password"
    assert prepare_new_password(decomposed) == prepare_new_password(composed) == composed
    assert prepare_presented_password(decomposed) == composed


@pytest.mark.parametrize("password", ["", "x" * (MAX_PASSWORD_BYTES + 1), "a\0b"])
def test_presented_passwords_no_stored_password_can_be(password: str) -> None:
    assert prepare_presented_password(password) is None


def test_a_short_presented_password_is_still_checked() -> None:
    assert prepare_presented_password("short") == "short"


def test_argon2id_hash_verify_and_wrong_password() -> None:
    hasher = Argon2Hasher(**CHEAP)
    stored = hasher.hash("correct horse")
    assert stored.startswith("$argon2id$")
    assert "correct horse" not in stored
    assert hasher.verify(stored, "correct horse")
    assert not hasher.verify(stored, "correct horsE")
    assert not hasher.verify("not a hash", "correct horse")
    assert hasher.hash("correct horse") != stored  # salted


def test_rehash_is_needed_exactly_when_the_parameters_changed() -> None:
    old = Argon2Hasher(**CHEAP)
    stored = old.hash("correct horse")
    assert not old.needs_rehash(stored)
    stronger = Argon2Hasher(time_cost=2, memory_cost=16, parallelism=1)
    assert stronger.needs_rehash(stored)
    assert stronger.verify(stored, "correct horse")  # old hashes keep working
    params = extract_parameters(stronger.hash("correct horse"))
    assert (params.type, params.time_cost, params.memory_cost) == (Type.ID, 2, 16)
    assert stronger.needs_rehash("garbage")


class GatedHasher:
    """Blocks every call until ``gate`` opens and records how many run at once (on worker
    threads). A call that waits too long fails instead of hanging the test."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self._lock = threading.Lock()
        self.active = 0
        self.peak = 0
        self.started = 0
        self.finished = 0
        self.threads: set[int] = set()
        self.loop_thread = threading.get_ident()  # made by the test, on the loop's thread

    def _enter(self) -> None:
        if threading.get_ident() == self.loop_thread:
            raise RuntimeError("hashing on the event loop's thread would stall every request")
        with self._lock:
            self.active += 1
            self.started += 1
            self.peak = max(self.peak, self.active)
            self.threads.add(threading.get_ident())
        try:
            if not self.gate.wait(timeout=30):
                raise RuntimeError("gate never opened")
        finally:
            with self._lock:
                self.active -= 1
                self.finished += 1

    def hash(self, password: str) -> str:
        self._enter()
        return f"fake${password}"

    def verify(self, password_hash: str, password: str) -> bool:
        self._enter()
        return password_hash == f"fake${password}"

    def needs_rehash(self, password_hash: str) -> bool:
        return False


def holds(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def poll() -> bool:
        return check()

    return poll


async def test_the_semaphore_bounds_concurrent_hashes_and_the_loop_stays_free() -> None:
    hasher = GatedHasher()
    hashing = PasswordHashing(hasher, concurrency=2)
    try:
        calls = [asyncio.create_task(hashing.hash(f"password-{i}")) for i in range(10)]
        await eventually(holds(lambda: hasher.active == 2))
        # While both slots are busy in their threads, the event loop still runs other work.
        ticks = 0
        for _ in range(50):
            await asyncio.sleep(0)
            ticks += 1
        assert ticks == 50
        assert hasher.started == 2  # the other eight wait on the loop, not in a thread
        assert not any(call.done() for call in calls)
        hasher.gate.set()
        results = await asyncio.gather(*calls)
    finally:
        hashing.close()
    assert results == [f"fake$password-{i}" for i in range(10)]
    assert hasher.peak == 2
    assert hasher.finished == 10


async def test_a_cancelled_login_keeps_its_slot_until_its_hash_ends() -> None:
    hasher = GatedHasher()
    hashing = PasswordHashing(hasher, concurrency=1)
    try:
        first = asyncio.create_task(hashing.verify("fake$a", "a"))
        await eventually(holds(lambda: hasher.active == 1))
        second = asyncio.create_task(hashing.verify("fake$b", "b"))
        first.cancel()  # the caller goes away; its thread cannot be stopped
        with pytest.raises(asyncio.CancelledError):
            await first
        for _ in range(50):
            await asyncio.sleep(0)
        assert hasher.started == 1  # the second waits: the slot is still taken
        hasher.gate.set()
        assert await second is True
    finally:
        hashing.close()
    assert hasher.peak == 1


class CountingHasher:
    """Instant, and counts what it is asked to do."""

    def __init__(self) -> None:
        self.hashes = 0
        self.verified: list[str] = []

    def hash(self, password: str) -> str:
        self.hashes += 1
        return f"fake${self.hashes}${password}"

    def verify(self, password_hash: str, password: str) -> bool:
        self.verified.append(password_hash)
        return password_hash.endswith(f"${password}")

    def needs_rehash(self, password_hash: str) -> bool:
        return False


async def test_the_dummy_hash_is_made_once_and_verified_against_each_time() -> None:
    hasher = CountingHasher()
    hashing = PasswordHashing(hasher)
    try:
        await hashing.warm_up()
        await hashing.dummy_verify("guess-one")
        await hashing.dummy_verify("guess-two")
    finally:
        hashing.close()
    assert hasher.hashes == 1
    assert len(hasher.verified) == 2
    assert len(set(hasher.verified)) == 1


def test_concurrency_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        PasswordHashing(CountingHasher(), concurrency=0)
