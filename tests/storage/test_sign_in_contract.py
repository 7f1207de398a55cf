"""The sign-in repositories' contract (codes, refresh families, browser sessions, consents,
interactions) on every backend, SQLite and PostgreSQL through ``database_url``, with the
single-use and rotation races run for real: concurrent callers in one process, and a second
Python process with its own engine and event loop racing on the same database."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from dataclasses import replace

from sqlalchemy import func, select

from oauth_server.clock import FrozenClock
from oauth_server.crypto import SplitToken, new_split_token
from oauth_server.maintenance import Purger
from oauth_server.oauth.keys import KeyEncryption, KeyManager, KeyRing
from oauth_server.storage import (
    AuthorizationCode,
    BrowserSession,
    Interaction,
    InteractionLogin,
    IssuedToken,
    RefreshFamily,
    RefreshRotation,
    RefreshTokenRecord,
    SqlStorage,
)
from oauth_server.storage.models import JTI_CHANGE, TOKEN_CHANGE
from oauth_server.storage.sql import schema
from tests.helpers import token_record

NOW = 1_000
RACERS = 20


def code(split: SplitToken, *, expires_at: int = NOW + 60) -> AuthorizationCode:
    return AuthorizationCode(
        selector=split.selector,
        verifier_hash=split.verifier_hash,
        client_id="app",
        redirect_uri="https://app.example/cb",
        user_id="u1",
        scope="openid profile",
        issued_at=NOW,
        expires_at=expires_at,
        code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        code_challenge_method="S256",
        resource="https://api.example",
        nonce="n-0S6_WzA2Mj",
        session_id="sid-1",
        auth_time=NOW - 5,
    )


def refresh(
    split: SplitToken, *, expires_at: int = NOW + 100, user_id: str = "u1"
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
        resource="https://api.example",
    )


def family(
    family_id: str = "f1", *, expires_at: int = NOW + 1000, user_id: str = "u1"
) -> RefreshFamily:
    return RefreshFamily(
        family_id=family_id, client_id="app", user_id=user_id, created_at=NOW, expires_at=expires_at
    )


def jwt(jti: str) -> IssuedToken:
    return IssuedToken(token_id=jti, token_format="jwt", client_id="app", expires_at=NOW + 3600)


async def new_family(
    storage: SqlStorage, family_id: str = "f1", *, expires_at: int = NOW + 1000
) -> SplitToken:
    split = new_split_token(NOW)
    await storage.refresh_tokens.create_family(
        family=family(family_id, expires_at=expires_at), token=refresh(split)
    )
    return split


async def changes_of(storage: SqlStorage, kind: str) -> list[str]:
    return [c.key for c in await storage.changes.read(after=0, limit=1000) if c.kind == kind]


# --- Authorization codes ----------------------------------------------------------------------


async def test_a_code_is_stored_as_its_hash_and_consumed_once(storage: SqlStorage) -> None:
    split = new_split_token(NOW)
    stored = code(split)
    await storage.codes.add(code=stored)
    async with storage.engine.connect() as conn:
        row = (await conn.execute(select(schema.authorization_codes))).one()
    assert split.value.encode() not in bytes(row.verifier_hash) + bytes(row.selector)
    assert bytes(row.verifier_hash) == split.verifier_hash  # SHA-256 of the secret part only

    wrong = await storage.codes.consume(selector=split.selector, verifier_hash=b"x" * 32, now=NOW)
    assert wrong is None  # and it did not use the code up:
    first = await storage.codes.consume(
        selector=split.selector, verifier_hash=split.verifier_hash, now=NOW + 1
    )
    assert first is not None
    assert first.outcome == "consumed"
    assert first.code == replace(stored, used_at=NOW + 1)
    second = await storage.codes.consume(
        selector=split.selector, verifier_hash=split.verifier_hash, now=NOW + 2
    )
    assert second is not None
    assert second.outcome == "replayed"
    assert second.code.replayed_at == NOW + 2
    unknown = new_split_token(NOW)
    assert (
        await storage.codes.consume(
            selector=unknown.selector, verifier_hash=unknown.verifier_hash, now=NOW
        )
        is None
    )


async def test_an_expired_code_is_refused_and_not_a_replay(storage: SqlStorage) -> None:
    split = new_split_token(NOW)
    await storage.codes.add(code=code(split, expires_at=NOW + 60))
    assert (
        await storage.codes.consume(
            selector=split.selector, verifier_hash=split.verifier_hash, now=NOW + 60
        )
        is None
    )
    assert (
        await storage.codes.consume(
            selector=split.selector, verifier_hash=split.verifier_hash, now=NOW + 59
        )
    ) is not None  # the clock decides, not the order of calls


async def test_a_replay_carries_and_revokes_what_the_code_issued(storage: SqlStorage) -> None:
    split = new_split_token(NOW)
    await storage.codes.add(code=code(split))
    opaque = token_record(client_id="app", expires_at=NOW + 3600)
    await storage.tokens.add(token=opaque)
    refresh_split = await new_family(storage, "fam-code")
    await storage.codes.consume(selector=split.selector, verifier_hash=split.verifier_hash, now=NOW)
    issued = [
        jwt("jti-1"),
        IssuedToken(opaque.selector.hex(), "opaque", "app", NOW + 3600),
    ]
    recorded = await storage.codes.record_issued(
        selector=split.selector, tokens=issued, refresh_family_id="fam-code", now=NOW
    )
    assert recorded is True

    replay = await storage.codes.consume(
        selector=split.selector, verifier_hash=split.verifier_hash, now=NOW + 5
    )
    assert replay is not None
    assert replay.outcome == "replayed"
    assert set(replay.issued) == set(issued)
    assert replay.code.refresh_family_id == "fam-code"
    assert not await changes_of(storage, JTI_CHANGE)  # consume itself revokes nothing

    voided = await storage.codes.revoke_issued(selector=split.selector, now=NOW + 5)
    assert set(voided) == set(issued)
    assert [r.jti for r in await storage.revocations.active(now=NOW)] == ["jti-1"]
    token = await storage.tokens.get(selector=opaque.selector)
    assert token is not None
    assert token.revoked_at == NOW + 5
    assert await changes_of(storage, JTI_CHANGE) == ["jti-1"]
    assert await changes_of(storage, TOKEN_CHANGE) == [opaque.selector.hex()]
    rt = await storage.refresh_tokens.get(selector=refresh_split.selector)
    assert rt is not None
    assert rt.revoked_at == NOW + 5
    # Idempotent: nothing announced twice.
    await storage.codes.revoke_issued(selector=split.selector, now=NOW + 6)
    assert await changes_of(storage, JTI_CHANGE) == ["jti-1"]


async def test_record_issued_after_a_replay_says_so(storage: SqlStorage) -> None:
    split = new_split_token(NOW)
    await storage.codes.add(code=code(split))
    for _ in range(2):
        await storage.codes.consume(
            selector=split.selector, verifier_hash=split.verifier_hash, now=NOW
        )
    late = await storage.codes.record_issued(
        selector=split.selector, tokens=[jwt("late")], refresh_family_id=None, now=NOW
    )
    assert late is False  # the winner must revoke what it just issued
    assert [
        t.token_id for t in await storage.codes.revoke_issued(selector=split.selector, now=NOW)
    ] == ["late"]


async def test_parallel_redemptions_of_one_code_give_exactly_one_success(
    storage: SqlStorage,
) -> None:
    split = new_split_token(NOW)
    await storage.codes.add(code=code(split))
    results = await asyncio.gather(
        *(
            storage.codes.consume(
                selector=split.selector, verifier_hash=split.verifier_hash, now=NOW
            )
            for _ in range(RACERS)
        )
    )
    outcomes = [r.outcome if r else None for r in results]
    assert outcomes.count("consumed") == 1
    assert outcomes.count("replayed") == RACERS - 1


# --- Refresh-token families -------------------------------------------------------------------


async def rotate(
    storage: SqlStorage,
    split: SplitToken,
    *,
    now: int = NOW + 1,
    grace: int = 0,
    access_tokens: Sequence[IssuedToken] = (),
) -> tuple[SplitToken, RefreshRotation]:
    """Present ``split``; a fresh successor asks for ``now + 100``."""
    successor = new_split_token(now)
    result = await storage.refresh_tokens.rotate(
        selector=split.selector,
        verifier_hash=split.verifier_hash,
        successor=refresh(successor, expires_at=now + 100),
        access_tokens=access_tokens,
        now=now,
        grace=grace,
    )
    assert result is not None
    return successor, result


async def test_rotation_chains_the_family_and_reuse_is_reported(storage: SqlStorage) -> None:
    first = await new_family(storage)
    second, rotated = await rotate(storage, first, access_tokens=[jwt("a2")])
    assert rotated.outcome == "rotated"
    successor = rotated.successor
    assert successor is not None
    assert successor.family_id == "f1"
    assert successor.parent == first.selector
    assert successor.client_id == "app"
    assert successor.user_id == "u1"

    _, reused = await rotate(storage, first, now=NOW + 2)
    assert reused.outcome == "reused"
    assert reused.family.family_id == "f1"
    assert (reused.within_grace, reused.successor_used) == (False, False)

    third, again = await rotate(storage, second, now=NOW + 3)
    assert again.outcome == "rotated"
    _, reused = await rotate(storage, first, now=NOW + 4)
    assert reused.successor_used is True

    wrong = await storage.refresh_tokens.rotate(
        selector=third.selector,
        verifier_hash=b"\0" * 32,
        successor=refresh(new_split_token(NOW)),
        now=NOW + 5,
    )
    assert wrong is None

    revocation = await storage.refresh_tokens.revoke_family(family_id="f1", now=NOW + 5)
    assert revocation.family_ids == ("f1",)
    assert revocation.refresh_tokens == 3
    assert [t.token_id for t in revocation.access_tokens] == ["a2"]
    assert await changes_of(storage, JTI_CHANGE) == ["a2"]
    _, after = await rotate(storage, third, now=NOW + 6)
    assert after.outcome == "revoked"
    again_revoked = await storage.refresh_tokens.revoke_family(family_id="f1", now=NOW + 7)
    assert again_revoked.refresh_tokens == 0
    assert await changes_of(storage, JTI_CHANGE) == ["a2"]


async def test_idle_and_absolute_expiry(storage: SqlStorage) -> None:
    split = await new_family(storage, expires_at=NOW + 150)
    _, idle = await rotate(storage, split, now=NOW + 100)  # its own expires_at: NOW + 100
    assert idle.outcome == "expired"
    successor, ok = await rotate(storage, split, now=NOW + 99)
    assert ok.outcome == "rotated"
    # The successor asked for NOW + 199, the family ends at NOW + 150.
    assert ok.successor is not None
    assert ok.successor.expires_at == NOW + 150
    _, late = await rotate(storage, successor, now=NOW + 150)
    assert late.outcome == "expired"


async def test_reuse_grace_allows_one_retry_and_revokes_the_unused_successor(
    storage: SqlStorage,
) -> None:
    split = await new_family(storage)
    lost, _rotated = await rotate(storage, split, now=NOW + 1, grace=10)
    retry, retried = await rotate(storage, split, now=NOW + 11, grace=10)
    assert retried.outcome == "rotated"
    assert retried.within_grace
    assert retried.replaced == lost.selector
    lost_row = await storage.refresh_tokens.get(selector=lost.selector)
    assert lost_row is not None
    assert lost_row.revoked_at == NOW + 11
    _, twice = await rotate(storage, split, now=NOW + 11, grace=10)
    assert twice.outcome == "reused"
    assert twice.within_grace
    _, ok = await rotate(storage, retry, now=NOW + 12, grace=10)
    assert ok.outcome == "rotated"


async def test_reuse_outside_the_grace_window_is_reuse(storage: SqlStorage) -> None:
    split = await new_family(storage)
    await rotate(storage, split, now=NOW + 1, grace=10)
    _, late = await rotate(storage, split, now=NOW + 12, grace=10)
    assert late.outcome == "reused"
    assert not late.within_grace
    _, used = await rotate(storage, split, now=NOW + 2, grace=0)
    assert used.outcome == "reused"
    assert not used.within_grace


async def test_parallel_rotations_of_one_refresh_token_give_exactly_one_success(
    storage: SqlStorage,
) -> None:
    split = await new_family(storage)
    results = await asyncio.gather(*(rotate(storage, split) for _ in range(RACERS)))
    outcomes = [r.outcome for _, r in results]
    assert outcomes.count("rotated") == 1
    assert outcomes.count("reused") == RACERS - 1
    async with storage.engine.connect() as conn:
        count = (
            await conn.execute(select(func.count()).select_from(schema.refresh_tokens))
        ).scalar_one()
    assert count == 2  # the presented token and its one successor


async def test_revoke_for_user_revokes_every_family_of_the_user(storage: SqlStorage) -> None:
    a = await new_family(storage, "fa")
    b = await new_family(storage, "fb")
    other = new_split_token(NOW)
    await storage.refresh_tokens.create_family(
        family=family("fo", user_id="u2"), token=refresh(other, user_id="u2")
    )
    await rotate(storage, a, access_tokens=[jwt("ja")])
    revocation = await storage.refresh_tokens.revoke_for_user(user_id="u1", now=NOW + 9)
    assert sorted(revocation.family_ids) == ["fa", "fb"]
    assert [t.token_id for t in revocation.access_tokens] == ["ja"]
    for split in (a, b):
        _, r = await rotate(storage, split, now=NOW + 10)
        assert r.outcome == "revoked"
    _, untouched = await rotate(storage, other, now=NOW + 10)
    assert untouched.outcome == "rotated"


async def test_revoke_for_session_keeps_offline_access_and_other_sessions(
    storage: SqlStorage,
) -> None:
    """Logout's rule: the families continuing the session end, unless their live token has
    ``offline_access``; other sessions' families and already-revoked ones are left alone."""
    tokens: dict[str, SplitToken] = {}
    for family_id, sid, scope in (
        ("online", "sid-1", "openid restaurants:read"),
        ("offline", "sid-1", "openid offline_access"),
        ("elsewhere", "sid-2", "openid"),
        ("no-session", "", "restaurants:read"),
    ):
        split = tokens[family_id] = new_split_token(NOW)
        token = replace(refresh(split), scope=scope, session_id=sid)
        await storage.refresh_tokens.create_family(family=family(family_id), token=token)
    # A rotated token of the session: its successor (same session) is what counts.
    successor = new_split_token(NOW + 1)
    await storage.refresh_tokens.rotate(
        selector=tokens["online"].selector,
        verifier_hash=tokens["online"].verifier_hash,
        successor=replace(refresh(successor), scope="openid restaurants:read", session_id="sid-1"),
        access_tokens=[jwt("j-online")],
        now=NOW + 1,
    )
    revocation = await storage.refresh_tokens.revoke_for_session(
        session_id="sid-1", now=NOW + 5, keep_scope="offline_access"
    )
    assert list(revocation.family_ids) == ["online"]
    assert [t.token_id for t in revocation.access_tokens] == ["j-online"]
    _, gone = await rotate(storage, successor, now=NOW + 6)
    assert gone.outcome == "revoked"
    for kept in ("offline", "elsewhere", "no-session"):
        _, alive = await rotate(storage, tokens[kept], now=NOW + 6)
        assert alive.outcome == "rotated", kept
    assert not (
        await storage.refresh_tokens.revoke_for_session(session_id="sid-1", now=NOW + 7)
    ).family_ids  # the offline family was rotated (its successor has no session): nothing
    nothing = await storage.refresh_tokens.revoke_for_session(session_id="", now=NOW + 7)
    assert not nothing.family_ids


# --- Browser sessions, consents, interactions -------------------------------------------------


def session(split: SplitToken, sid: str = "sid-1", user_id: str = "u1") -> BrowserSession:
    return BrowserSession(
        selector=split.selector,
        verifier_hash=split.verifier_hash,
        session_id=sid,
        user_id=user_id,
        auth_time=NOW,
        created_at=NOW,
        last_seen=NOW,
        expires_at=NOW + 100,
        amr=("pwd",),
    )


async def test_browser_sessions(storage: SqlStorage) -> None:
    split = new_split_token(NOW)
    other = new_split_token(NOW)
    await storage.sessions.create(session=session(split))
    await storage.sessions.create(session=session(other, "sid-2"))
    got = await storage.sessions.get(
        selector=split.selector, verifier_hash=split.verifier_hash, now=NOW
    )
    assert got == session(split)
    assert (
        await storage.sessions.get(
            selector=split.selector, verifier_hash=other.verifier_hash, now=NOW
        )
        is None
    )
    assert await storage.sessions.touch(session_id="sid-1", now=NOW + 5)
    got = await storage.sessions.get(
        selector=split.selector, verifier_hash=split.verifier_hash, now=NOW + 5
    )
    assert got is not None
    assert got.last_seen == NOW + 5
    assert (
        await storage.sessions.get(
            selector=split.selector, verifier_hash=split.verifier_hash, now=NOW + 100
        )
        is None
    )
    assert await storage.sessions.end(session_id="sid-1", now=NOW + 6)
    assert not await storage.sessions.end(session_id="sid-1", now=NOW + 7)
    assert not await storage.sessions.touch(session_id="sid-1", now=NOW + 7)
    assert (
        await storage.sessions.get(
            selector=split.selector, verifier_hash=split.verifier_hash, now=NOW + 7
        )
        is None
    )
    assert await storage.sessions.end_all_for_user(user_id="u1", now=NOW + 8) == 1  # sid-2


async def test_consents_are_a_union_per_user_and_client(storage: SqlStorage) -> None:
    first = await storage.consents.grant(user_id="u1", client_id="app", scopes=["openid"], now=NOW)
    assert first.scopes == frozenset({"openid"})
    await asyncio.gather(
        *(
            storage.consents.grant(user_id="u1", client_id="app", scopes=[f"s{i}"], now=NOW + 1)
            for i in range(5)
        )
    )
    got = await storage.consents.get(user_id="u1", client_id="app")
    assert got is not None
    assert got.scopes == {"openid", "s0", "s1", "s2", "s3", "s4"}
    await storage.consents.grant(user_id="u1", client_id="b-app", scopes=["email"], now=NOW)
    assert [c.client_id for c in await storage.consents.list_for_user(user_id="u1")] == [
        "app",
        "b-app",
    ]
    assert await storage.consents.revoke(user_id="u1", client_id="app")
    assert not await storage.consents.revoke(user_id="u1", client_id="app")
    assert await storage.consents.get(user_id="u1", client_id="app") is None


def interaction(split: SplitToken, browser: bytes = b"b" * 32) -> Interaction:
    return Interaction(
        selector=split.selector,
        verifier_hash=split.verifier_hash,
        browser_hash=browser,
        client_id="app",
        params='{"response_type": "code", "state": "xyz"}',
        created_at=NOW,
        expires_at=NOW + 1800,
    )


async def test_interactions_resume_and_complete_once(storage: SqlStorage) -> None:
    split = new_split_token(NOW)
    browser = b"b" * 32
    await storage.interactions.create(interaction=interaction(split, browser))
    args = {"selector": split.selector, "verifier_hash": split.verifier_hash}
    assert await storage.interactions.get(**args, browser_hash=browser, now=NOW) == interaction(
        split
    )
    assert await storage.interactions.get(**args, browser_hash=b"o" * 32, now=NOW) is None
    login = InteractionLogin(user_id="u1", auth_time=NOW + 2, session_id="sid-1", amr=("pwd",))
    updated = await storage.interactions.update(selector=split.selector, now=NOW + 2, login=login)
    assert updated is not None
    assert (updated.user_id, updated.auth_time, updated.amr) == (
        "u1",
        NOW + 2,
        ("pwd",),
    )
    updated = await storage.interactions.update(
        selector=split.selector, now=NOW + 3, consented=["openid"]
    )
    assert updated is not None
    assert updated.consented == frozenset({"openid"})
    assert updated.user_id == "u1"
    assert await storage.interactions.complete(**args, browser_hash=b"o" * 32, now=NOW + 4) is None
    results = await asyncio.gather(
        *(
            storage.interactions.complete(**args, browser_hash=browser, now=NOW + 4)
            for _ in range(10)
        )
    )
    done = [r for r in results if r is not None]
    assert len(done) == 1
    assert done[0].completed_at == NOW + 4
    assert done[0].consented == frozenset({"openid"})
    assert await storage.interactions.get(**args, browser_hash=browser, now=NOW + 4) is None
    assert (
        await storage.interactions.update(selector=split.selector, now=NOW + 5, consented=[])
        is None
    )
    assert await storage.interactions.delete(selector=split.selector)


async def test_an_expired_interaction_is_gone(storage: SqlStorage) -> None:
    split = new_split_token(NOW)
    await storage.interactions.create(interaction=interaction(split))
    args = {
        "selector": split.selector,
        "verifier_hash": split.verifier_hash,
        "browser_hash": b"b" * 32,
    }
    assert await storage.interactions.get(**args, now=NOW + 1800) is None
    assert await storage.interactions.complete(**args, now=NOW + 1800) is None
    assert await storage.interactions.complete(**args, now=NOW + 1799) is not None


# --- Purge ------------------------------------------------------------------------------------


async def test_purge_deletes_expired_sign_in_rows_in_bounded_batches(storage: SqlStorage) -> None:
    for i in range(5):
        await storage.codes.add(code=code(new_split_token(NOW), expires_at=NOW + i))
    await storage.codes.add(code=code(new_split_token(NOW), expires_at=NOW + 500))
    assert await storage.codes.purge_expired(before=NOW + 5, limit=3) == 3
    assert await storage.codes.purge_expired(before=NOW + 5, limit=3) == 2
    assert await storage.codes.purge_expired(before=NOW + 5, limit=3) == 0

    old = await new_family(storage, "old", expires_at=NOW + 50)
    await rotate(
        storage, old, now=NOW + 1, access_tokens=[replace(jwt("j-old"), expires_at=NOW + 10)]
    )
    await new_family(storage, "live", expires_at=NOW + 5000)
    assert await storage.refresh_tokens.purge_expired(before=NOW + 60, limit=10) == 2
    assert await storage.refresh_tokens.purge_expired_families(before=NOW + 60, limit=10) == 1
    assert await storage.refresh_tokens.purge_expired_issued(before=NOW + 60, limit=10) == 1
    assert await storage.refresh_tokens.get_family(family_id="live") is not None

    ended, expired, live = (new_split_token(NOW) for _ in range(3))
    await storage.sessions.create(session=session(ended, "s-ended"))
    await storage.sessions.create(session=replace(session(expired, "s-exp"), expires_at=NOW + 10))
    await storage.sessions.create(session=replace(session(live, "s-live"), expires_at=NOW + 900))
    await storage.sessions.end(session_id="s-ended", now=NOW + 1)
    assert await storage.sessions.purge_expired(before=NOW + 20, limit=10) == 2

    done, stale, waiting = (new_split_token(NOW) for _ in range(3))
    await storage.interactions.create(interaction=replace(interaction(done), completed_at=NOW + 1))
    await storage.interactions.create(interaction=replace(interaction(stale), expires_at=NOW + 10))
    await storage.interactions.create(interaction=interaction(waiting))
    assert await storage.interactions.purge_expired(before=NOW + 20, limit=10) == 2
    assert (
        await storage.interactions.get(
            selector=waiting.selector,
            verifier_hash=waiting.verifier_hash,
            browser_hash=b"b" * 32,
            now=NOW,
        )
        is not None
    )


async def test_the_purger_drains_sign_in_rows_past_the_grace(storage: SqlStorage) -> None:
    for i in range(5):  # expired more than the grace ago: they go, two per batch
        await storage.codes.add(code=code(new_split_token(NOW), expires_at=NOW - 601 - i))
    await storage.codes.add(code=code(new_split_token(NOW), expires_at=NOW - 599))  # stays
    await new_family(storage, "gone", expires_at=NOW - 700)
    await new_family(storage, "kept", expires_at=NOW + 10)
    await storage.sessions.create(
        session=replace(session(new_split_token(NOW), "s-old"), expires_at=NOW - 700)
    )
    await storage.interactions.create(
        interaction=replace(interaction(new_split_token(NOW)), expires_at=NOW - 700)
    )
    clock = FrozenClock(NOW)
    keys = KeyManager(
        storage,
        KeyRing(token_ttl=3600, leeway=30),
        encryption=KeyEncryption(b"k" * 32),
        clock=clock,
    )
    purger = Purger(storage, keys=keys, clock=clock, batch_size=2, pause=0.001, grace=600)
    report = await purger.run_once()
    assert report.authorization_codes == 5
    assert (report.refresh_tokens, report.refresh_families) == (1, 1)
    assert (report.browser_sessions, report.interactions) == (1, 1)
    assert await storage.refresh_tokens.get_family(family_id="kept") is not None
    again = await purger.run_once()
    assert (again.authorization_codes, again.refresh_families) == (0, 0)


# --- Across two processes ---------------------------------------------------------------------


async def race_with_a_second_process(
    storage: SqlStorage, url: str, kind: str, split: SplitToken
) -> int:
    """Start the child (tests/storage/race_child.py), let both processes fire RACERS // 2
    attempts at the same moment, and return the total number of wins."""
    half = RACERS // 2
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.storage.race_child",
        url,
        kind,
        split.selector.hex(),
        split.verifier_hash.hex(),
        str(half),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdin is not None
    assert child.stdout is not None
    try:
        ready = await asyncio.wait_for(child.stdout.readline(), 60)
        assert ready == b"ready\n"
        child.stdin.write(b"go\n")
        await child.stdin.drain()
        if kind == "code":
            mine = await asyncio.gather(
                *(
                    storage.codes.consume(
                        selector=split.selector, verifier_hash=split.verifier_hash, now=NOW
                    )
                    for _ in range(half)
                )
            )
            wins = sum(1 for r in mine if r is not None and r.outcome == "consumed")
        else:
            rotations = await asyncio.gather(
                *(rotate(storage, split, now=NOW) for _ in range(half))
            )
            wins = sum(1 for _, r in rotations if r.outcome == "rotated")
        theirs = int((await asyncio.wait_for(child.stdout.readline(), 60)).decode())
        assert await asyncio.wait_for(child.wait(), 60) == 0
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    return wins + theirs


async def test_two_processes_redeeming_one_code_get_exactly_one_success(
    storage: SqlStorage, database_url: str
) -> None:
    split = new_split_token(NOW)
    await storage.codes.add(code=code(split))
    assert await race_with_a_second_process(storage, database_url, "code", split) == 1


async def test_two_processes_rotating_one_refresh_token_get_exactly_one_success(
    storage: SqlStorage, database_url: str
) -> None:
    split = await new_family(storage)
    assert await race_with_a_second_process(storage, database_url, "refresh", split) == 1
    async with storage.engine.connect() as conn:
        count = (
            await conn.execute(select(func.count()).select_from(schema.refresh_tokens))
        ).scalar_one()
    assert count == 2
