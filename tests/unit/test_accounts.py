"""The accounts core: validation before storage, one answer for every failed sign-in (with a
dummy verification for unknown users, counted with a fake hasher), rehash on login, and the
audit events of each change — never a password or a hash in them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from argon2 import extract_parameters

from oauth_server.accounts import (
    Accounts,
    Argon2Hasher,
    AuthenticationFailed,
    InvalidPassword,
    InvalidUserData,
    PasswordHashing,
    normalize_username,
)
from oauth_server.clock import FrozenClock
from oauth_server.storage import AlreadyExists, SqlStorage, UserProfileChanges
from tests.fakes import CountingHasher, MemoryAudit

PASSWORD = "correct horse battery"


class World:
    def __init__(self, storage: SqlStorage, hasher: CountingHasher | Argon2Hasher) -> None:
        self.hasher = hasher
        self.audit = MemoryAudit()
        self.hashing = PasswordHashing(hasher)
        self.accounts = Accounts(
            storage.users, self.hashing, clock=FrozenClock(1_000_000), audit=self.audit
        )


@pytest.fixture
async def world(sqlite_storage: SqlStorage) -> AsyncIterator[World]:
    built = World(sqlite_storage, CountingHasher())
    try:
        yield built
    finally:
        built.hashing.close()


@pytest.mark.parametrize(
    ("username", "valid"),
    [
        ("alice", True),
        ("Alice.Smith-2@example.com", True),
        ("a", True),
        ("_", True),
        ("x" * 64, True),
        ("", False),
        ("x" * 65, False),
        ("alice smith", False),
        ("alice\n", False),
        ("al/ice", False),
        ("al:ice", False),
        ("ålice", False),
        ("alice\0", False),
        ("ALİCE", False),  # a dotted capital I: not ASCII, so no case-folding surprises
    ],
)
def test_username_syntax(username: str, valid: bool) -> None:
    if valid:
        assert normalize_username(username) == username.lower()
    else:
        with pytest.raises(InvalidUserData, match="1-64 characters"):
            normalize_username(username)


@pytest.mark.parametrize(
    ("profile", "problem"),
    [
        ({"name": "x" * 256}, "name must be at most 255"),
        ({"given_name": "Al\x1bice"}, "control characters"),
        ({"email": "not-an-address"}, "name@domain"),
        ({"email": "a@b c"}, "name@domain"),
        ({"email": "a@" + "b" * 260}, "at most 254"),
        ({"email_verified": True}, "needs an email"),
        ({"preferred_username": "line\nbreak"}, "control characters"),
    ],
)
async def test_bad_profiles_are_refused_before_any_storage_or_hashing(
    world: World, profile: dict[str, object], problem: str
) -> None:
    with pytest.raises(InvalidUserData, match=problem):
        await world.accounts.create("alice", PASSWORD, **profile)  # type: ignore[arg-type]
    assert world.hasher.made == []  # type: ignore[union-attr]
    assert await world.accounts.find("alice") is None


async def test_bad_usernames_and_passwords_are_refused_before_storage(world: World) -> None:
    with pytest.raises(InvalidUserData):
        await world.accounts.create("no spaces", PASSWORD)
    with pytest.raises(InvalidPassword):
        await world.accounts.create("alice", "short")
    assert await world.accounts.list() == []
    assert world.audit.events == []


async def test_create_stores_a_hash_a_random_id_and_the_profile(world: World) -> None:
    user = await world.accounts.create(
        "Alice", PASSWORD, name="Alice A", email="alice@example.com", email_verified=True
    )
    assert user.username == "alice"
    assert user.preferred_username == "Alice"
    assert user.password_hash != PASSWORD
    assert user.password_hash.endswith(PASSWORD)  # the fake "hash" shows what was hashed
    assert len(user.user_id) == 32
    assert user.user_id != user.username
    assert (user.created_at, user.updated_at) == (1_000_000, 1_000_000)
    assert await world.accounts.get(user.user_id) == user
    other = await world.accounts.create("bob", PASSWORD)
    assert other.user_id != user.user_id
    assert world.audit.events == [
        ("user_created", {"user_id": user.user_id, "username": "alice"}),
        ("user_created", {"user_id": other.user_id, "username": "bob"}),
    ]
    assert "password_hash" not in repr(user)


async def test_usernames_are_unique_in_any_case(world: World) -> None:
    await world.accounts.create("Alice", PASSWORD)
    for spelling in ("alice", "ALICE", "aLiCe"):
        with pytest.raises(AlreadyExists):
            await world.accounts.create(spelling, PASSWORD)
    found = await world.accounts.find("ALICE")
    assert found is not None
    assert found.username == "alice"
    assert await world.accounts.find("bad name") is None


async def test_authenticate_succeeds_with_the_password_in_any_username_case(world: World) -> None:
    user = await world.accounts.create("alice", PASSWORD)
    assert await world.accounts.authenticate("ALICE", PASSWORD) == user


async def failure(world: World, username: str, password: str) -> AuthenticationFailed:
    with pytest.raises(AuthenticationFailed) as caught:
        await world.accounts.authenticate(username, password)
    return caught.value


async def test_unknown_user_and_wrong_password_are_indistinguishable(world: World) -> None:
    hasher = world.hasher
    assert isinstance(hasher, CountingHasher)
    user = await world.accounts.create("alice", PASSWORD)
    await world.hashing.warm_up()  # the dummy hash, made once
    made = len(hasher.made)

    wrong = await failure(world, "alice", "wrong password")
    unknown = await failure(world, "mallory", "wrong password")
    malformed = await failure(world, "not a username", "wrong password")
    await world.accounts.set_disabled(user.user_id, True)
    disabled = await failure(world, "alice", PASSWORD)

    # One answer to the caller...
    answers = {(type(e), str(e), e.args) for e in (wrong, unknown, malformed, disabled)}
    assert answers == {
        (AuthenticationFailed, "wrong username or password", ("wrong username or password",))
    }
    # ...and one verification each: the unknown users' against the dummy hash.
    dummy = hasher.made[1]
    assert hasher.verified == [user.password_hash, dummy, dummy, user.password_hash]
    assert len(hasher.made) == made  # no hash made at login
    # The real reasons, privately, for the audit trail.
    assert [(e.reason, e.user_id) for e in (wrong, unknown, malformed, disabled)] == [
        ("wrong password", user.user_id),
        ("unknown user", None),
        ("unknown user", None),
        ("disabled", user.user_id),
    ]


async def test_the_first_unknown_user_makes_the_dummy_hash_then_verifies_it(world: World) -> None:
    hasher = world.hasher
    assert isinstance(hasher, CountingHasher)
    await failure(world, "nobody", "some password")
    await failure(world, "nobody-else", "another password")
    assert len(hasher.made) == 1
    assert hasher.verified == [hasher.made[0], hasher.made[0]]


@pytest.mark.parametrize("password", ["", "x" * 1025, "nul\0inside"])
async def test_passwords_no_account_can_have_fail_without_any_hashing(
    world: World, password: str
) -> None:
    await world.accounts.create("alice", PASSWORD)
    hasher = world.hasher
    assert isinstance(hasher, CountingHasher)
    for username in ("alice", "nobody"):
        caught = await failure(world, username, password)
        assert caught.reason == "unusable password"
        assert str(caught) == "wrong username or password"
    assert hasher.verified == []


async def test_enabled_again_the_user_signs_in_again(world: World) -> None:
    user = await world.accounts.create("alice", PASSWORD)
    assert await world.accounts.set_disabled(user.user_id, True)
    assert not await world.accounts.set_disabled(user.user_id, True)  # no change, no event
    assert await world.accounts.set_disabled(user.user_id, False)
    assert (await world.accounts.authenticate("alice", PASSWORD)).user_id == user.user_id
    assert world.audit.kinds() == ["user_created", "user_disabled", "user_enabled"]


async def test_the_admin_flag_is_granted_and_withdrawn_with_an_event(world: World) -> None:
    user = await world.accounts.create("alice", PASSWORD)
    assert not user.is_admin
    assert await world.accounts.set_admin(user.user_id, True)
    assert not await world.accounts.set_admin(user.user_id, True)  # no change, no event
    stored = await world.accounts.get(user.user_id)
    assert stored is not None
    assert stored.is_admin
    assert await world.accounts.set_admin(user.user_id, False)
    stored = await world.accounts.get(user.user_id)
    assert stored is not None
    assert not stored.is_admin
    assert not await world.accounts.set_admin("no-such-id", True)
    assert world.audit.kinds() == ["user_created", "user_admin_granted", "user_admin_withdrawn"]
    # Withdrawing the flag is not a withdrawal of access: the user still signs in.
    assert (await world.accounts.authenticate("alice", PASSWORD)).user_id == user.user_id


async def test_a_user_created_as_admin_is_one_and_it_is_audited(world: World) -> None:
    user = await world.accounts.create("root", PASSWORD, is_admin=True)
    assert user.is_admin
    stored = await world.accounts.get(user.user_id)
    assert stored is not None
    assert stored.is_admin
    assert world.audit.kinds() == ["user_created", "user_admin_granted"]


async def test_set_password_replaces_it_and_is_audited(world: World) -> None:
    user = await world.accounts.create("alice", PASSWORD)
    assert await world.accounts.set_password(user.user_id, "a brand new password")
    assert (await failure(world, "alice", PASSWORD)).reason == "wrong password"
    assert (await world.accounts.authenticate("alice", "a brand new password")).username == "alice"
    assert not await world.accounts.set_password("no-such-id", "a brand new password")
    with pytest.raises(InvalidPassword):
        await world.accounts.set_password(user.user_id, "short")
    assert world.audit.events[-1] == (
        "user_password_changed",
        {"user_id": user.user_id, "username": "alice"},
    )


async def test_delete_is_audited_and_frees_the_username_not_the_id(world: World) -> None:
    user = await world.accounts.create("alice", PASSWORD)
    assert await world.accounts.delete(user.user_id)
    assert not await world.accounts.delete(user.user_id)
    assert (await failure(world, "alice", PASSWORD)).reason == "unknown user"
    again = await world.accounts.create("alice", PASSWORD)
    assert again.user_id != user.user_id
    assert world.audit.kinds() == ["user_created", "user_deleted", "user_created"]


async def test_update_profile_validates_and_sets_updated_at(world: World) -> None:
    user = await world.accounts.create("alice", PASSWORD, email="a@example.com")
    with pytest.raises(InvalidUserData):
        await world.accounts.update_profile(user.user_id, UserProfileChanges(email="nope"))
    updated = await world.accounts.update_profile(
        user.user_id, UserProfileChanges(name="Alice B", email_verified=True)
    )
    assert updated is not None
    assert (updated.name, updated.email, updated.email_verified) == (
        "Alice B",
        "a@example.com",
        True,
    )
    assert await world.accounts.update_profile("nobody", UserProfileChanges(name="x")) is None


async def test_a_login_rehashes_when_the_parameters_changed(sqlite_storage: SqlStorage) -> None:
    weak = World(sqlite_storage, Argon2Hasher(time_cost=1, memory_cost=8, parallelism=1))
    strong = World(sqlite_storage, Argon2Hasher(time_cost=2, memory_cost=16, parallelism=1))
    try:
        created = await weak.accounts.create("alice", PASSWORD)
        assert extract_parameters(created.password_hash).time_cost == 1
        assert (await strong.accounts.authenticate("alice", PASSWORD)).user_id == created.user_id
        stored = await sqlite_storage.users.get(user_id=created.user_id)
        assert stored is not None
        params = extract_parameters(stored.password_hash)
        assert (params.time_cost, params.memory_cost) == (2, 16)
        # The new hash still verifies, and is not redone at the next login.
        await strong.accounts.authenticate("alice", PASSWORD)
        again = await sqlite_storage.users.get(user_id=created.user_id)
        assert again is not None
        assert again.password_hash == stored.password_hash
        # A rehash is not a password change: nothing to audit, no sessions to end.
        assert strong.audit.events == []
    finally:
        weak.hashing.close()
        strong.hashing.close()


async def test_a_rehash_never_undoes_a_password_change_made_meanwhile(
    sqlite_storage: SqlStorage,
) -> None:
    world = World(sqlite_storage, CountingHasher(rehash=True))
    try:
        user = await world.accounts.create("alice", PASSWORD)
        # The login read the old hash; the password changes before its rehash is written.
        assert await sqlite_storage.users.set_password_hash(
            user_id=user.user_id, password_hash="fake$9$changed-password"
        )
        rehashed = await world.accounts._rehash(user, PASSWORD)
        stored = await sqlite_storage.users.get(user_id=user.user_id)
        assert stored is not None
        assert stored.password_hash == "fake$9$changed-password"
        assert rehashed.password_hash == user.password_hash
    finally:
        world.hashing.close()
