"""The user repository's contract, on every backend (SQLite and PostgreSQL through
``database_url``), beside ``test_contract.py``."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from oauth_server.storage import (
    AlreadyExists,
    SqlStorage,
    User,
    UserProfileChanges,
)


def user(username: str = "alice", user_id: str | None = None) -> User:
    return User(
        user_id=user_id or f"id-{username}",
        username=username,
        password_hash=f"$argon2id$v=19$m=8,t=1,p=1$salt${username}",
        name="Alice Example",
        given_name="Alice",
        family_name="Example",
        preferred_username="Alice",
        email="alice@example.com",
        email_verified=True,
        created_at=1,
        updated_at=2,
    )


async def test_add_get_by_id_and_by_username(storage: SqlStorage) -> None:
    alice = user()
    await storage.users.add(user=alice)
    assert await storage.users.get(user_id="id-alice") == alice
    assert await storage.users.get_by_username(username="alice") == alice
    assert await storage.users.get(user_id="nobody") is None
    assert await storage.users.get_by_username(username="nobody") is None
    defaults = User(user_id="id-bare", username="bare", password_hash="h")
    await storage.users.add(user=defaults)
    assert await storage.users.get(user_id="id-bare") == defaults


async def test_a_username_or_id_is_taken_once(storage: SqlStorage) -> None:
    await storage.users.add(user=user())
    with pytest.raises(AlreadyExists):
        await storage.users.add(user=user(user_id="another-id"))
    with pytest.raises(AlreadyExists):
        await storage.users.add(user=user("bob", user_id="id-alice"))


async def test_concurrent_adds_of_one_username_give_exactly_one_user(storage: SqlStorage) -> None:
    results = await asyncio.gather(
        *(storage.users.add(user=user(user_id=f"id-{n}")) for n in range(10)),
        return_exceptions=True,
    )
    assert sum(result is None for result in results) == 1
    assert all(isinstance(r, AlreadyExists) for r in results if r is not None)
    assert len(await storage.users.list(limit=100)) == 1


async def test_list_pages_by_username(storage: SqlStorage) -> None:
    names = ["dave", "alice", "carol", "bob", "erin"]
    for name in names:
        await storage.users.add(user=user(name))
    first = await storage.users.list(limit=2)
    assert [u.username for u in first] == ["alice", "bob"]
    rest = await storage.users.list(limit=10, after="bob")
    assert [u.username for u in rest] == ["carol", "dave", "erin"]
    assert await storage.users.list(limit=10, after="erin") == []


async def test_update_profile_changes_only_what_it_names(storage: SqlStorage) -> None:
    await storage.users.add(user=user())
    updated = await storage.users.update_profile(
        user_id="id-alice",
        changes=UserProfileChanges(name="Alice B", email="", email_verified=False),
        now=50,
    )
    expected = replace(user(), name="Alice B", email="", email_verified=False, updated_at=50)
    assert updated == expected
    assert await storage.users.get(user_id="id-alice") == expected
    assert (
        await storage.users.update_profile(
            user_id="nobody", changes=UserProfileChanges(name="x"), now=1
        )
        is None
    )


async def test_set_password_hash_is_true_only_when_this_call_changed_it(
    storage: SqlStorage,
) -> None:
    await storage.users.add(user=user())
    old = user().password_hash
    assert await storage.users.set_password_hash(user_id="id-alice", password_hash="new")
    assert not await storage.users.set_password_hash(user_id="id-alice", password_hash="new")
    assert not await storage.users.set_password_hash(user_id="nobody", password_hash="x")
    # Compare-and-set: a rehash based on the old hash does not overwrite the new password.
    assert not await storage.users.set_password_hash(
        user_id="id-alice", password_hash="rehashed-old", replaces=old
    )
    assert await storage.users.set_password_hash(
        user_id="id-alice", password_hash="rehashed-new", replaces="new"
    )
    stored = await storage.users.get(user_id="id-alice")
    assert stored is not None
    assert stored.password_hash == "rehashed-new"


async def test_set_disabled_is_true_only_when_this_call_changed_it(storage: SqlStorage) -> None:
    await storage.users.add(user=user())
    assert await storage.users.set_disabled(user_id="id-alice", disabled=True)
    assert not await storage.users.set_disabled(user_id="id-alice", disabled=True)
    stored = await storage.users.get(user_id="id-alice")
    assert stored is not None
    assert stored.disabled
    assert await storage.users.set_disabled(user_id="id-alice", disabled=False)
    assert not await storage.users.set_disabled(user_id="nobody", disabled=True)


async def test_set_admin_is_true_only_when_this_call_changed_it(storage: SqlStorage) -> None:
    await storage.users.add(user=user())
    stored = await storage.users.get(user_id="id-alice")
    assert stored is not None
    assert not stored.is_admin
    assert await storage.users.set_admin(user_id="id-alice", is_admin=True)
    assert not await storage.users.set_admin(user_id="id-alice", is_admin=True)
    stored = await storage.users.get(user_id="id-alice")
    assert stored is not None
    assert stored.is_admin
    assert not stored.disabled
    assert await storage.users.set_admin(user_id="id-alice", is_admin=False)
    stored = await storage.users.get(user_id="id-alice")
    assert stored is not None
    assert not stored.is_admin
    assert not await storage.users.set_admin(user_id="nobody", is_admin=True)


async def test_an_admin_user_is_stored_as_one(storage: SqlStorage) -> None:
    await storage.users.add(user=replace(user(), is_admin=True))
    stored = await storage.users.get(user_id="id-alice")
    assert stored is not None
    assert stored.is_admin


async def test_of_concurrent_disables_exactly_one_changes_it(storage: SqlStorage) -> None:
    await storage.users.add(user=user())
    results = await asyncio.gather(
        *(storage.users.set_disabled(user_id="id-alice", disabled=True) for _ in range(10))
    )
    assert results.count(True) == 1


async def test_delete(storage: SqlStorage) -> None:
    await storage.users.add(user=user())
    assert await storage.users.delete(user_id="id-alice")
    assert not await storage.users.delete(user_id="id-alice")
    assert await storage.users.get_by_username(username="alice") is None
