"""The storage the account page stands on, on every backend (SQLite and PostgreSQL through
``database_url``): a user's live sessions (with the browser and address they signed in
from), ending one only for its own user, refresh families per user and client — revoked with
their access tokens announced on the change feed — and the per-client summary of live ones."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from oauth_server.crypto import SplitToken, new_split_token
from oauth_server.storage import (
    BrowserSession,
    IssuedToken,
    RefreshFamily,
    RefreshRotation,
    RefreshTokenRecord,
    SqlStorage,
    UserClientGrant,
)
from oauth_server.storage.models import JTI_CHANGE, MAX_USER_AGENT, TOKEN_CHANGE
from tests.helpers import token_record

NOW = 1_000


def family(family_id: str, *, user_id: str, expires_at: int) -> RefreshFamily:
    return RefreshFamily(
        family_id=family_id, client_id="app", user_id=user_id, created_at=NOW, expires_at=expires_at
    )


def refresh(
    split: SplitToken, *, user_id: str = "u1", expires_at: int = NOW + 100
) -> RefreshTokenRecord:
    return RefreshTokenRecord(
        selector=split.selector,
        verifier_hash=split.verifier_hash,
        family_id="",
        client_id="app",
        user_id=user_id,
        scope="openid offline_access",
        issued_at=NOW,
        expires_at=expires_at,
    )


def jwt(jti: str) -> IssuedToken:
    return IssuedToken(token_id=jti, token_format="jwt", client_id="app", expires_at=NOW + 3600)


async def rotate(
    storage: SqlStorage,
    split: SplitToken,
    *,
    now: int = NOW + 1,
    access_tokens: Sequence[IssuedToken] = (),
) -> tuple[SplitToken, RefreshRotation]:
    """Present ``split``; a fresh successor (issued at ``NOW``) takes its place."""
    successor = new_split_token(NOW)
    result = await storage.refresh_tokens.rotate(
        selector=split.selector,
        verifier_hash=split.verifier_hash,
        successor=refresh(successor, expires_at=now + 100),
        access_tokens=access_tokens,
        now=now,
    )
    assert result is not None
    return successor, result


def session(
    sid: str,
    *,
    user_id: str = "u1",
    last_seen: int = NOW,
    expires_at: int = NOW + 100,
    user_agent: str = "",
    address: str = "",
) -> tuple[SplitToken, BrowserSession]:
    split = new_split_token(NOW)
    return split, BrowserSession(
        selector=split.selector,
        verifier_hash=split.verifier_hash,
        session_id=sid,
        user_id=user_id,
        auth_time=NOW,
        created_at=NOW,
        last_seen=last_seen,
        expires_at=expires_at,
        amr=("pwd",),
        user_agent=user_agent,
        address=address,
    )


async def test_sessions_keep_the_browser_and_address_they_signed_in_from(
    storage: SqlStorage,
) -> None:
    split, made = session("sid-ua", user_agent="Firefox/140.0", address="203.0.113.7")
    await storage.sessions.create(session=made)
    got = await storage.sessions.get(
        selector=split.selector, verifier_hash=split.verifier_hash, now=NOW
    )
    assert got == made
    _, long = session("sid-long", user_agent="x" * 1000)
    await storage.sessions.create(session=long)
    (listed,) = [
        s
        for s in await storage.sessions.list_for_user(user_id="u1", now=NOW)
        if s.session_id == "sid-long"
    ]
    assert listed.user_agent == "x" * MAX_USER_AGENT


async def test_a_users_live_sessions_are_listed_most_recently_seen_first(
    storage: SqlStorage,
) -> None:
    for sid, fields in [
        ("old", {"last_seen": NOW}),
        ("new", {"last_seen": NOW + 5}),
        ("expired", {"expires_at": NOW + 10}),
        ("ended", {}),
        ("bobs", {"user_id": "u2"}),
    ]:
        await storage.sessions.create(session=session(sid, **fields)[1])  # type: ignore[arg-type]
    assert await storage.sessions.end(session_id="ended", now=NOW + 1)
    listed = await storage.sessions.list_for_user(user_id="u1", now=NOW + 10)
    assert [s.session_id for s in listed] == ["new", "old"]
    assert [s.session_id for s in await storage.sessions.list_for_user(user_id="u2", now=NOW)] == [
        "bobs"
    ]
    assert await storage.sessions.list_for_user(user_id="nobody", now=NOW) == []


async def test_a_session_is_ended_only_for_its_own_user(storage: SqlStorage) -> None:
    split, mine = session("sid-1")
    await storage.sessions.create(session=mine)
    await storage.sessions.create(session=session("sid-expired", expires_at=NOW + 5)[1])
    # Another user's id, an unknown id, an expired session: nothing ends.
    assert not await storage.sessions.end_for_user(user_id="u2", session_id="sid-1", now=NOW)
    assert not await storage.sessions.end_for_user(user_id="u1", session_id="nope", now=NOW)
    assert not await storage.sessions.end_for_user(
        user_id="u1", session_id="sid-expired", now=NOW + 5
    )
    assert (
        await storage.sessions.get(
            selector=split.selector, verifier_hash=split.verifier_hash, now=NOW
        )
        is not None
    )
    assert await storage.sessions.end_for_user(user_id="u1", session_id="sid-1", now=NOW + 1)
    assert not await storage.sessions.end_for_user(user_id="u1", session_id="sid-1", now=NOW + 2)
    assert (
        await storage.sessions.get(
            selector=split.selector, verifier_hash=split.verifier_hash, now=NOW + 2
        )
        is None
    )


async def _family_of(
    storage: SqlStorage,
    family_id: str,
    *,
    client_id: str,
    user_id: str,
    expires_at: int = NOW + 1000,
) -> SplitToken:
    split = new_split_token(NOW)
    await storage.refresh_tokens.create_family(
        family=replace(
            family(family_id, user_id=user_id, expires_at=expires_at), client_id=client_id
        ),
        token=replace(refresh(split, user_id=user_id), client_id=client_id),
    )
    return split


async def changes_of(storage: SqlStorage, kind: str) -> list[str]:
    return [c.key for c in await storage.changes.read(after=0, limit=1000) if c.kind == kind]


async def test_revoke_for_user_client_revokes_that_apps_families_and_their_access_tokens(
    storage: SqlStorage,
) -> None:
    first = await _family_of(storage, "f-app-1", client_id="app", user_id="u1")
    second = await _family_of(storage, "f-app-2", client_id="app", user_id="u1")
    other_app = await _family_of(storage, "f-other", client_id="other", user_id="u1")
    other_user = await _family_of(storage, "f-bob", client_id="app", user_id="u2")
    opaque = token_record(client_id="app", expires_at=NOW + 3600)
    await storage.tokens.add(token=opaque)
    await rotate(
        storage,
        first,
        access_tokens=[jwt("j-1"), IssuedToken(opaque.selector.hex(), "opaque", "app", NOW + 3600)],
    )
    await rotate(storage, other_app, access_tokens=[jwt("j-other")])
    await rotate(storage, other_user, access_tokens=[jwt("j-bob")])

    revocation = await storage.refresh_tokens.revoke_for_user_client(
        user_id="u1", client_id="app", now=NOW + 9
    )
    assert revocation.family_ids == ("f-app-1", "f-app-2")
    assert revocation.refresh_tokens == 3  # f-app-1's two (rotated and current), f-app-2's one
    assert sorted(t.token_id for t in revocation.access_tokens) == sorted(
        ["j-1", opaque.selector.hex()]
    )
    # Voided the way every revocation is: on the list, marked, announced in the transaction.
    assert [r.jti for r in await storage.revocations.active(now=NOW)] == ["j-1"]
    stored = await storage.tokens.get(selector=opaque.selector)
    assert stored is not None
    assert stored.revoked_at == NOW + 9
    assert await changes_of(storage, JTI_CHANGE) == ["j-1"]
    assert await changes_of(storage, TOKEN_CHANGE) == [opaque.selector.hex()]
    _, after = await rotate(storage, second, now=NOW + 10)
    assert after.outcome == "revoked"
    # The user's other app and the other user's grant of this app are untouched.
    for split in (other_app, other_user):
        got = await storage.refresh_tokens.get(selector=split.selector)
        assert got is not None
        assert got.revoked_at is None
    assert {
        f.client_id for f in await storage.refresh_tokens.grants_for_user(user_id="u1", now=NOW)
    } == {"other"}
    # Idempotent: nothing left to revoke, nothing announced twice.
    again = await storage.refresh_tokens.revoke_for_user_client(
        user_id="u1", client_id="app", now=NOW + 11
    )
    assert again.family_ids == ()
    assert await changes_of(storage, JTI_CHANGE) == ["j-1"]


async def test_grants_for_user_count_live_families_and_their_last_use(storage: SqlStorage) -> None:
    used = await _family_of(storage, "f-1", client_id="b-app", user_id="u1")
    await _family_of(storage, "f-2", client_id="b-app", user_id="u1")
    await _family_of(storage, "f-a", client_id="a-app", user_id="u1")
    await _family_of(storage, "f-gone", client_id="c-app", user_id="u1")
    await _family_of(storage, "f-old", client_id="d-app", user_id="u1", expires_at=NOW + 50)
    await _family_of(storage, "f-bob", client_id="b-app", user_id="u2")
    await storage.refresh_tokens.revoke_family(family_id="f-gone", now=NOW + 1)
    await rotate(storage, used, now=NOW + 40)  # the successor is issued at NOW (the record's)
    await rotate(storage, used, now=NOW + 41)  # reused: changes nothing

    grants = await storage.refresh_tokens.grants_for_user(user_id="u1", now=NOW + 50)
    assert grants == [
        UserClientGrant(client_id="a-app", families=1, first_created_at=NOW, last_used_at=NOW),
        UserClientGrant(client_id="b-app", families=2, first_created_at=NOW, last_used_at=NOW),
    ]
    assert await storage.refresh_tokens.grants_for_user(user_id="nobody", now=NOW) == []


async def test_last_use_is_the_newest_refresh_token_of_the_clients_live_families(
    storage: SqlStorage,
) -> None:
    split = await _family_of(storage, "f-1", client_id="app", user_id="u1")
    successor = new_split_token(NOW)
    rotated = await storage.refresh_tokens.rotate(
        selector=split.selector,
        verifier_hash=split.verifier_hash,
        successor=replace(refresh(successor), issued_at=NOW + 30, expires_at=NOW + 130),
        now=NOW + 30,
    )
    assert rotated is not None
    assert rotated.outcome == "rotated"
    (grant,) = await storage.refresh_tokens.grants_for_user(user_id="u1", now=NOW + 31)
    assert grant.last_used_at == NOW + 30
    assert grant.first_created_at == NOW
