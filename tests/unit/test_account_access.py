"""The account core (:class:`AccountAccess`) with in-memory fakes: which apps a user sees,
revoking one (consent gone, that user's families of that client revoked, their access tokens
voided here at once, audited), sessions (the current one first, ending only the user's own,
"sign out everywhere" leaving apps alone), and the password change (current password first,
every session and family withdrawn, the policy checked before any hash)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest

from oauth_server.accounts import Accounts, InvalidPassword, PasswordHashing
from oauth_server.accounts.access import AccessRevoked, AccountAccess, WrongCurrentPassword
from oauth_server.clock import FrozenClock
from oauth_server.storage.models import (
    BrowserSession,
    Client,
    Consent,
    FamilyRevocation,
    IssuedToken,
    RefreshFamily,
    User,
    UserClientGrant,
)
from tests.fakes import CountingHasher, MemoryAudit, MemoryClients

NOW = 1_000_000
PASSWORD = "correct horse battery"
NEW_PASSWORD = "an entirely new passphrase"


class MemoryUsers:
    def __init__(self) -> None:
        self.rows: dict[str, User] = {}

    async def add(self, *, user: User) -> None:
        self.rows[user.user_id] = user

    async def get(self, *, user_id: str) -> User | None:
        return self.rows.get(user_id)

    async def get_by_username(self, *, username: str) -> User | None:
        return next((u for u in self.rows.values() if u.username == username), None)

    async def set_password_hash(
        self, *, user_id: str, password_hash: str, replaces: str | None = None
    ) -> bool:
        user = self.rows.get(user_id)
        if user is None or (replaces is not None and user.password_hash != replaces):
            return False
        self.rows[user_id] = replace(user, password_hash=password_hash)
        return True

    async def set_disabled(self, *, user_id: str, disabled: bool) -> bool:
        user = self.rows[user_id]
        self.rows[user_id] = replace(user, disabled=disabled)
        return user.disabled != disabled


class MemoryConsents:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], Consent] = {}

    def add(self, user_id: str, client_id: str, *scopes: str, at: int = NOW) -> None:
        self.rows[user_id, client_id] = Consent(user_id, client_id, frozenset(scopes), at)

    async def list_for_user(self, *, user_id: str) -> list[Consent]:
        return [c for (u, _), c in sorted(self.rows.items()) if u == user_id]

    async def revoke(self, *, user_id: str, client_id: str) -> bool:
        return self.rows.pop((user_id, client_id), None) is not None


@dataclass
class MemoryRefresh:
    families: dict[str, RefreshFamily] = field(default_factory=dict)
    issued: dict[str, list[IssuedToken]] = field(default_factory=dict)
    last_used: dict[str, int] = field(default_factory=dict)

    def add(
        self, family_id: str, user_id: str, client_id: str, *jtis: str, used: int = NOW
    ) -> None:
        self.families[family_id] = RefreshFamily(family_id, client_id, user_id, NOW - 50, NOW + 99)
        self.issued[family_id] = [IssuedToken(j, "jwt", client_id, NOW + 60) for j in jtis]
        self.last_used[family_id] = used

    def live(self, family_id: str) -> bool:
        return self.families[family_id].revoked_at is None

    def _revoke(self, ids: list[str], now: int) -> FamilyRevocation:
        for family_id in ids:
            self.families[family_id] = replace(self.families[family_id], revoked_at=now)
        tokens = tuple(t for family_id in ids for t in self.issued[family_id])
        return FamilyRevocation(tuple(ids), len(ids), tokens)

    async def revoke_for_user(self, *, user_id: str, now: int) -> FamilyRevocation:
        return self._revoke(
            sorted(k for k, f in self.families.items() if f.user_id == user_id and self.live(k)),
            now,
        )

    async def revoke_for_user_client(
        self, *, user_id: str, client_id: str, now: int
    ) -> FamilyRevocation:
        return self._revoke(
            sorted(
                k
                for k, f in self.families.items()
                if f.user_id == user_id and f.client_id == client_id and self.live(k)
            ),
            now,
        )

    async def grants_for_user(self, *, user_id: str, now: int) -> list[UserClientGrant]:
        by_client: dict[str, list[str]] = {}
        for k, f in sorted(self.families.items()):
            if f.user_id == user_id and self.live(k) and f.expires_at > now:
                by_client.setdefault(f.client_id, []).append(k)
        return [
            UserClientGrant(
                client_id,
                len(ids),
                min(self.families[k].created_at for k in ids),
                max(self.last_used[k] for k in ids),
            )
            for client_id, ids in sorted(by_client.items())
        ]


class MemorySessions:
    def __init__(self) -> None:
        self.rows: dict[str, BrowserSession] = {}

    def add(self, sid: str, user_id: str, *, last_seen: int = NOW) -> None:
        self.rows[sid] = BrowserSession(
            selector=sid.encode(),
            verifier_hash=b"h" * 32,
            session_id=sid,
            user_id=user_id,
            auth_time=NOW - 100,
            created_at=NOW - 100,
            last_seen=last_seen,
            expires_at=NOW + 100,
            user_agent=f"agent of {sid}",
            address="192.0.2.1",
        )

    def live(self, sid: str) -> bool:
        return self.rows[sid].ended_at is None

    async def list_for_user(self, *, user_id: str, now: int) -> list[BrowserSession]:
        mine = [s for s in self.rows.values() if s.user_id == user_id and s.ended_at is None]
        return sorted(mine, key=lambda s: (-s.last_seen, s.session_id))

    async def end_for_user(self, *, user_id: str, session_id: str, now: int) -> bool:
        row = self.rows.get(session_id)
        if row is None or row.user_id != user_id or row.ended_at is not None:
            return False
        self.rows[session_id] = replace(row, ended_at=now)
        return True

    async def end_all_for_user(self, *, user_id: str, now: int) -> int:
        ended = 0
        for sid, row in self.rows.items():
            if row.user_id == user_id and row.ended_at is None:
                self.rows[sid] = replace(row, ended_at=now)
                ended += 1
        return ended


class RecordingVoider:
    def __init__(self) -> None:
        self.tokens: list[str] = []

    def voided(self, tokens: object) -> None:
        self.tokens.extend(t.token_id for t in tokens)  # type: ignore[attr-defined]


class World:
    def __init__(self) -> None:
        self.hasher = CountingHasher()
        self.users = MemoryUsers()
        self.consents = MemoryConsents()
        self.refresh = MemoryRefresh()
        self.sessions = MemorySessions()
        self.voider = RecordingVoider()
        self.audit = MemoryAudit()
        self.clients = MemoryClients(
            Client(client_id="menu", secret_hash=None, name="Menu Planner"),
            Client(client_id="auto", secret_hash=None, name="Autopilot"),
            Client(client_id="nameless", secret_hash=None),
        )
        clock = FrozenClock(NOW)
        self.accounts = Accounts(
            self.users,  # type: ignore[arg-type]
            PasswordHashing(self.hasher),
            clock=clock,
            audit=self.audit,
            refresh_tokens=self.refresh,  # type: ignore[arg-type]
            sessions=self.sessions,  # type: ignore[arg-type]
            voider=self.voider,
        )
        self.access = AccountAccess(
            accounts=self.accounts,
            clients=self.clients,
            consents=self.consents,  # type: ignore[arg-type]
            refresh_tokens=self.refresh,  # type: ignore[arg-type]
            sessions=self.sessions,  # type: ignore[arg-type]
            clock=clock,
            audit=self.audit,
            voider=self.voider,
        )


@pytest.fixture
async def world() -> World:
    w = World()
    for name in ("alice", "bob"):
        await w.accounts.create(name, PASSWORD)
    w.audit.events.clear()
    return w


async def uid(world: World, username: str) -> str:
    user = await world.accounts.find(username)
    assert user is not None
    return user.user_id


# --- Apps -------------------------------------------------------------------------------------


async def test_apps_are_the_consents_and_the_clients_holding_live_refresh_tokens(
    world: World,
) -> None:
    alice, bob = await uid(world, "alice"), await uid(world, "bob")
    world.consents.add(alice, "menu", "restaurants:read", "openid", at=NOW - 30)
    world.refresh.add("f1", alice, "menu", used=NOW - 20)
    world.refresh.add("f2", alice, "menu", used=NOW - 10)
    world.refresh.add("f3", alice, "auto")  # a client needing no consent: no stored consent
    world.consents.add(alice, "gone-client", "openid")  # its client was deleted since
    world.consents.add(alice, "nameless", "email")
    world.consents.add(bob, "bobs-only", "openid")
    world.refresh.add("fb", bob, "menu")

    apps = await world.access.list_apps(user_id=alice)
    assert [(a.name, a.client_id) for a in apps] == [
        ("Autopilot", "auto"),
        ("gone-client", "gone-client"),
        ("Menu Planner", "menu"),
        ("nameless", "nameless"),
    ]
    auto, _, menu, nameless = apps
    assert menu.scopes == ("openid", "restaurants:read")
    assert menu.granted_at == NOW - 30
    assert (menu.last_used_at, menu.refresh_grants) == (NOW - 10, 2)
    assert (auto.scopes, auto.granted_at, auto.refresh_grants) == ((), None, 1)
    assert (nameless.last_used_at, nameless.refresh_grants) == (None, 0)


async def test_revoking_an_app_deletes_the_consent_and_revokes_its_families_at_once(
    world: World,
) -> None:
    alice, bob = await uid(world, "alice"), await uid(world, "bob")
    world.consents.add(alice, "menu", "openid")
    world.consents.add(bob, "menu", "openid")
    world.refresh.add("f1", alice, "menu", "j1", "j2")
    world.refresh.add("f2", alice, "menu", "j3")
    world.refresh.add("f-auto", alice, "auto", "j-auto")
    world.refresh.add("f-bob", bob, "menu", "j-bob")

    revoked = await world.access.revoke_app(user_id=alice, client_id="menu")

    assert revoked == AccessRevoked(
        client_id="menu",
        consent_deleted=True,
        families=("f1", "f2"),
        refresh_tokens=2,
        access_tokens=3,
    )
    assert world.voider.tokens == ["j1", "j2", "j3"]  # refused in this process at once
    assert not world.refresh.live("f1")
    assert not world.refresh.live("f2")
    assert world.refresh.live("f-auto")  # the user's other app
    assert world.refresh.live("f-bob")  # another user's grant of the same app
    assert (bob, "menu") in world.consents.rows
    assert (alice, "menu") not in world.consents.rows
    assert world.audit.kinds() == [
        "refresh_family_revoked",
        "refresh_family_revoked",
        "app_access_revoked",
    ]
    _, fields = world.audit.events[0]
    assert fields == {
        "user_id": alice,
        "client_id": "menu",
        "family_id": "f1",
        "reason": "user_revoked_app",
    }
    assert world.audit.events[-1][1] == {"user_id": alice, "client_id": "menu", "count": 2}


async def test_revoking_an_app_the_user_never_granted_changes_nothing(world: World) -> None:
    alice, bob = await uid(world, "alice"), await uid(world, "bob")
    world.consents.add(bob, "menu", "openid")
    world.refresh.add("f-bob", bob, "menu", "j-bob")
    revoked = await world.access.revoke_app(user_id=alice, client_id="menu")
    assert not revoked.changed
    assert world.refresh.live("f-bob")
    assert (bob, "menu") in world.consents.rows
    assert world.voider.tokens == []
    assert world.audit.kinds() == []


# --- Sessions ---------------------------------------------------------------------------------


async def test_sessions_list_the_current_one_first_then_by_last_seen(world: World) -> None:
    alice = await uid(world, "alice")
    world.sessions.add("s-old", alice, last_seen=NOW - 90)
    world.sessions.add("s-here", alice, last_seen=NOW - 60)
    world.sessions.add("s-new", alice, last_seen=NOW - 5)
    world.sessions.add("s-bob", await uid(world, "bob"))
    listed = await world.access.list_sessions(user_id=alice, current_session_id="s-here")
    assert [(s.session_id, s.current) for s in listed] == [
        ("s-here", True),
        ("s-new", False),
        ("s-old", False),
    ]
    assert listed[1].user_agent == "agent of s-new"
    assert listed[1].address == "192.0.2.1"
    assert [s.current for s in await world.access.list_sessions(user_id=alice)] == [False] * 3


async def test_a_session_is_ended_only_for_its_own_user(world: World) -> None:
    alice, bob = await uid(world, "alice"), await uid(world, "bob")
    world.sessions.add("s-bob", bob)
    world.sessions.add("s-alice", alice)
    assert not await world.access.end_session(user_id=alice, session_id="s-bob")
    assert world.sessions.live("s-bob")
    assert world.audit.kinds() == []
    assert await world.access.end_session(user_id=alice, session_id="s-alice")
    assert not world.sessions.live("s-alice")
    assert world.audit.events == [("session_ended", {"user_id": alice, "count": 1})]


async def test_signing_out_everywhere_ends_sessions_and_leaves_apps_alone(world: World) -> None:
    alice = await uid(world, "alice")
    world.sessions.add("s1", alice)
    world.sessions.add("s2", alice)
    world.sessions.add("s-bob", await uid(world, "bob"))
    world.refresh.add("f1", alice, "menu", "j1")
    assert await world.access.end_all_sessions(user_id=alice) == 2
    assert not world.sessions.live("s1")
    assert not world.sessions.live("s2")
    assert world.sessions.live("s-bob")
    assert world.refresh.live("f1")  # documented: signing out is not revoking an app
    assert world.voider.tokens == []
    assert world.audit.events == [
        ("session_ended", {"user_id": alice, "count": 2, "reason": "everywhere"})
    ]


# --- Password ---------------------------------------------------------------------------------


async def test_a_password_change_withdraws_every_session_and_family(world: World) -> None:
    alice = await uid(world, "alice")
    world.sessions.add("s1", alice)
    world.sessions.add("s-bob", await uid(world, "bob"))
    world.refresh.add("f1", alice, "menu", "j1")
    world.refresh.add("f2", alice, "auto", "j2")
    changed = await world.access.change_password(
        user_id=alice, current_password=PASSWORD, new_password=NEW_PASSWORD
    )
    assert changed.user_id == alice
    assert (await world.accounts.authenticate("alice", NEW_PASSWORD)).user_id == alice
    assert not world.sessions.live("s1")
    assert world.sessions.live("s-bob")
    assert not world.refresh.live("f1")
    assert not world.refresh.live("f2")
    assert world.voider.tokens == ["j1", "j2"]  # refused in this process at once
    assert "user_password_changed" in world.audit.kinds()


@pytest.mark.parametrize("current", ["not the password", "", PASSWORD + " "])
async def test_a_wrong_current_password_changes_nothing(world: World, current: str) -> None:
    alice = await uid(world, "alice")
    world.sessions.add("s1", alice)
    world.refresh.add("f1", alice, "menu", "j1")
    with pytest.raises(WrongCurrentPassword) as raised:
        await world.access.change_password(
            user_id=alice, current_password=current, new_password=NEW_PASSWORD
        )
    assert str(raised.value) == "the current password is wrong"
    assert (await world.accounts.authenticate("alice", PASSWORD)).user_id == alice
    assert world.sessions.live("s1")
    assert world.refresh.live("f1")
    assert "user_password_changed" not in world.audit.kinds()


async def test_a_disabled_user_cannot_change_the_password(world: World) -> None:
    alice = await uid(world, "alice")
    await world.accounts.set_disabled(alice, True)
    with pytest.raises(WrongCurrentPassword) as raised:
        await world.access.change_password(
            user_id=alice, current_password=PASSWORD, new_password=NEW_PASSWORD
        )
    assert raised.value.reason == "disabled"


async def test_an_unknown_user_gets_the_same_refusal(world: World) -> None:
    with pytest.raises(WrongCurrentPassword):
        await world.access.change_password(
            user_id="nobody", current_password=PASSWORD, new_password=NEW_PASSWORD
        )


async def test_the_new_password_policy_is_checked_before_any_hash(world: World) -> None:
    alice = await uid(world, "alice")
    made, verified = len(world.hasher.made), len(world.hasher.verified)
    with pytest.raises(InvalidPassword):
        await world.access.change_password(
            user_id=alice, current_password=PASSWORD, new_password="short"
        )
    assert (len(world.hasher.made), len(world.hasher.verified)) == (made, verified)
