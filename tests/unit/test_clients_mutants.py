"""The client directory's cache lifetimes and the registry's every decision: what a new client
may be, what is stored (never the secret), and who is told of a change (kills the mutants of
``oauth/clients.py``; see ``make mutate``)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from oauth_server.cache import TTLCache
from oauth_server.clock import FrozenClock
from oauth_server.crypto import hash_secret, verify_secret
from oauth_server.oauth.clients import ClientDirectory, ClientRegistry, InvalidClientMetadata
from oauth_server.storage.models import Change, Client, ClientRevocation
from tests.fakes import MemoryAudit, MemoryClients, make_client

NOW = 1_800_000_000

# --- ClientDirectory -----------------------------------------------------------------------


def clocked(directory: ClientDirectory, clock: FrozenClock) -> ClientDirectory:
    directory._cache = TTLCache(max_entries=directory._cache._max_entries, monotonic=clock.now)
    return directory


async def test_known_and_unknown_clients_are_both_cached_a_minute() -> None:
    # Unknown ids are remembered as long as known ones, so timing cannot tell which exist.
    clock = FrozenClock(NOW)
    clients = MemoryClients(make_client("app"))
    directory = clocked(ClientDirectory(clients), clock)
    assert directory._cache._max_entries == 50_000
    assert (await directory.get("app")) is clients.rows["app"]
    assert await directory.get("ghost") is None
    assert clients.lookups == 2
    clock.advance(59.9)
    assert (await directory.get("app")) is clients.rows["app"]
    assert await directory.get("ghost") is None
    assert clients.lookups == 2
    clock.advance(0.1)  # t = 60: both are asked again
    await directory.get("app")
    await directory.get("ghost")
    assert clients.lookups == 4


async def test_the_directory_clock_and_lifetime_are_its_arguments() -> None:
    now = [0.0]
    clients = MemoryClients(make_client("app"))
    directory = ClientDirectory(clients, ttl=10.0, max_entries=7, monotonic=lambda: now[0])
    assert directory._cache._max_entries == 7
    await directory.get("app")
    now[0] = 9.9
    await directory.get("app")
    assert clients.lookups == 1
    now[0] = 10.0
    await directory.get("app")
    assert clients.lookups == 2


async def test_invalidation_by_call_and_by_change() -> None:
    clients = MemoryClients(make_client("app"), make_client("other"))
    directory = ClientDirectory(clients)
    await directory.get("app")
    await directory.get("other")
    directory.invalidate("app")
    await directory.get("app")
    await directory.get("other")
    assert clients.lookups == 3
    directory.on_change(Change(change_id=1, kind="client", key="other"))
    await directory.get("app")
    await directory.get("other")
    assert clients.lookups == 4


# --- ClientRegistry ------------------------------------------------------------------------


class Clients:
    def __init__(self) -> None:
        self.rows: dict[str, Client] = {}
        self.calls: list[tuple[str, Any]] = []
        self.set_secret_succeeds = True

    async def get(self, *, client_id: str) -> Client | None:
        return self.rows.get(client_id)

    async def add(self, *, client: Client) -> None:
        self.calls.append(("add", client.client_id))
        self.rows[client.client_id] = client

    async def delete(self, *, client_id: str, revocation: ClientRevocation) -> bool:
        self.calls.append(("delete", (client_id, revocation)))
        return self.rows.pop(client_id, None) is not None

    async def set_secret_hash(self, *, client_id: str, secret_hash: str, now: int) -> bool:
        self.calls.append(("set_secret_hash", (client_id, secret_hash, now)))
        return self.set_secret_succeeds

    async def update(self, *, client: Client) -> bool:
        self.calls.append(("update", client.client_id))
        if client.client_id not in self.rows:
            return False
        self.rows[client.client_id] = client
        return True


class Changes:
    def __init__(self) -> None:
        self.published: list[tuple[str, str, int]] = []

    async def publish(self, *, kind: str, key: str, now: int) -> None:
        self.published.append((kind, key, now))


class Revocations:
    def __init__(self) -> None:
        self.clients: list[ClientRevocation] = []

    async def revoke_client(self, *, revocation: ClientRevocation) -> None:
        self.clients.append(revocation)


class Storage:
    def __init__(self) -> None:
        self.clients = Clients()
        self.changes = Changes()
        self.revocations = Revocations()


class Cutoffs:
    """RevokedClients as the registry sees it: what this process was told at once."""

    def __init__(self) -> None:
        self.added: list[tuple[str, int]] = []

    def add(self, client_id: str, revoked_at: int) -> None:
        self.added.append((client_id, revoked_at))


class Directory:
    def __init__(self) -> None:
        self.invalidated: list[str] = []

    def invalidate(self, client_id: str) -> None:
        self.invalidated.append(client_id)


MAX_TOKEN_AGE = 4000


class World:
    def __init__(self, *, directory: bool = True, cutoffs: bool = True) -> None:
        self.storage = Storage()
        self.audit = MemoryAudit()
        self.directory = Directory() if directory else None
        self.cutoffs = Cutoffs() if cutoffs else None
        self.clock = FrozenClock(NOW + 0.9)
        self.registry = ClientRegistry(
            self.storage,  # type: ignore[arg-type]
            clock=self.clock,
            directory=self.directory,  # type: ignore[arg-type]
            revoked_clients=self.cutoffs,  # type: ignore[arg-type]
            max_token_age=MAX_TOKEN_AGE,
            audit=self.audit,
        )


async def test_a_client_is_created_with_every_field() -> None:
    world = World()
    created = await world.registry.create(
        client_id="app",
        name="The App",
        scopes=("b", "a", "b"),
        default_scopes=("a",),
        token_format="opaque",
        resources=("https://one.example", "https://two.example", "https://one.example"),
        introspect=("https://rs.example", "https://one.example", "https://rs.example"),
    )
    assert created.secret is not None
    assert len(created.secret) == 43
    assert created.client == Client(
        client_id="app",
        secret_hash=hash_secret(created.secret),
        name="The App",
        grant_types=frozenset({"client_credentials"}),
        scopes=frozenset({"a", "b"}),
        default_scopes=("a",),
        token_format="opaque",
        resources=("https://one.example", "https://two.example"),
        created_at=NOW,
        updated_at=NOW,
        introspect=("https://rs.example", "https://one.example"),
    )
    assert world.storage.clients.rows["app"] == created.client
    assert created.secret not in repr(world.storage.clients.rows)
    assert world.storage.changes.published == [("client", "app", NOW)]
    assert world.directory is not None
    assert world.directory.invalidated == ["app"]
    assert world.audit.events == [("client_created", {"client_id": "app", "scope": "b a"})]


async def test_creation_defaults() -> None:
    world = World(directory=False)
    created = await world.registry.create(scopes=("a", "b"))
    client = created.client
    assert len(client.client_id) == 22  # new_token(16)
    assert (client.token_format, client.default_scopes, client.resources) == ("jwt", ("a", "b"), ())
    assert client.introspect == ()  # no right to introspect other clients' tokens
    assert client.grant_types == frozenset({"client_credentials"})
    assert client.name == ""
    assert world.storage.changes.published == [("client", client.client_id, NOW)]
    other = await world.registry.create()
    assert other.client.client_id != client.client_id
    assert other.secret != created.secret


async def test_the_demo_secret_is_kept_when_given() -> None:
    created = await World().registry.create(client_id="demo", secret="fixed-secret", scopes=("a",))
    assert created.secret == "fixed-secret"
    assert verify_secret("fixed-secret", created.client.secret_hash or "")


async def test_explicitly_no_default_scopes() -> None:
    created = await World().registry.create(client_id="x", scopes=("a", "b"), default_scopes=())
    assert created.client.default_scopes == ()
    same = await World().registry.create(
        client_id="y", scopes=("a", "b"), default_scopes=("a", "b")
    )
    assert same.client.default_scopes == ("a", "b")


CODE: dict[str, Any] = {
    "grant_types": ("authorization_code",),
    "redirect_uris": ("https://app.example/cb",),
}
LONG_HTTP = "http://app.example/" + "a" * 100


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"client_id": "bad id"}, "client_id must be 1-128 characters of A-Z a-z 0-9 . _ ~ -"),
        ({"client_id": "x" * 129}, "client_id must be 1-128 characters of A-Z a-z 0-9 . _ ~ -"),
        (
            {"grant_types": ()},
            "grant types must be among: authorization_code, client_credentials, refresh_token",
        ),
        (
            {"grant_types": ("client_credentials", "password")},
            "grant types must be among: authorization_code, client_credentials, refresh_token",
        ),
        ({"scopes": ('a"b',)}, "invalid scope: the scope parameter is malformed"),
        (
            {"scopes": ("a",), "default_scopes": ('"',)},
            "invalid scope: the scope parameter is malformed",
        ),
        (
            {"scopes": ("a",), "default_scopes": ("a", "b")},
            "default scopes must be among the allowed scopes",
        ),
        ({"token_format": "JWT"}, "token format must be jwt or opaque"),
        (
            {"resources": ("one.example",)},
            "resource 'one.example' must be an absolute URI without a fragment (RFC 8707)",
        ),
        (
            {"resources": ("https://",)},
            "resource 'https://' must be an absolute URI without a fragment (RFC 8707)",
        ),
        (
            {"resources": ("//host",)},
            "resource '//host' must be an absolute URI without a fragment (RFC 8707)",
        ),
        (
            {"resources": ("https://one.example#",)},
            "resource 'https://one.example#' must be an absolute URI without a fragment (RFC 8707)",
        ),
        (
            {"introspect": ("rs.example",)},
            "introspection audience 'rs.example' must be an absolute URI without a fragment "
            "(RFC 8707)",
        ),
        (
            {"grant_types": ("refresh_token",)},
            "the refresh_token grant needs the authorization_code grant",
        ),
        (
            {"client_type": "public", "grant_types": ("client_credentials",)},
            "a public client may only use the authorization_code and refresh_token grants "
            "(client_credentials is for confidential clients, OAuth 2.1 §4.2)",
        ),
        (
            {**CODE, "client_type": "public", "auth_methods": ("client_secret_post",)},
            "a public client authenticates with none, never a secret",
        ),
        (
            {**CODE, "client_type": "public", "require_pkce": False},
            "a public client must use PKCE",
        ),
        (
            {"auth_methods": ("none",)},
            "a confidential client authenticates with client_secret_basic and/or "
            "client_secret_post (none is for public clients)",
        ),
        ({"client_type": "other"}, "client type must be confidential or public"),
        (
            {"grant_types": ("authorization_code",)},
            "the authorization_code grant needs a redirect URI",
        ),
        (
            {**CODE, "scopes": ("offline_access",)},
            "scope offline_access needs the refresh_token grant",
        ),
        (
            # The URI is quoted up to 100 characters, then the rule it breaks.
            {**CODE, "redirect_uris": (LONG_HTTP,)},
            f"invalid redirect URI {LONG_HTTP[:100]!r}: must use https (http only for a "
            "loopback host: 127.0.0.1, [::1] or localhost)",
        ),
        (
            {"resources": ("https://ok.example",), "introspect": ("https://rs.example#x",)},
            "introspection audience 'https://rs.example#x' must be an absolute URI without a "
            "fragment (RFC 8707)",
        ),
    ],
)
async def test_invalid_metadata_is_refused_and_nothing_is_stored(
    kwargs: dict[str, Any], message: str
) -> None:
    world = World()
    with pytest.raises(InvalidClientMetadata) as caught:
        await world.registry.create(**kwargs)
    assert str(caught.value) == message
    assert world.storage.clients.rows == {}
    assert world.storage.changes.published == []


async def test_the_allowed_scopes_may_all_be_defaults_and_tokens_may_be_opaque() -> None:
    world = World()
    for i, (fmt, scopes) in enumerate([("jwt", ("a",)), ("opaque", ("a", "b"))]):
        created = await world.registry.create(
            client_id=f"c{i}",
            scopes=scopes,
            default_scopes=scopes,
            token_format=fmt,  # type: ignore[arg-type]
        )
        assert created.client.token_format == fmt


async def test_rotation_replaces_the_secret_everywhere() -> None:
    world = World()
    created = await world.registry.create(client_id="app", scopes=("a",))
    world.clock.advance(100)
    rotated = await world.registry.rotate_secret("app")
    assert rotated is not None
    assert rotated.secret is not None
    assert rotated.secret != created.secret
    new_hash = hash_secret(rotated.secret)
    assert rotated.client == replace(created.client, secret_hash=new_hash, updated_at=NOW + 100)
    assert world.storage.clients.calls[-1] == ("set_secret_hash", ("app", new_hash, NOW + 100))
    assert world.storage.changes.published[-1] == ("client", "app", NOW + 100)
    assert world.directory is not None
    assert world.directory.invalidated == ["app", "app"]
    assert world.audit.events[-1] == ("client_secret_rotated", {"client_id": "app"})


async def test_rotating_an_unknown_or_vanished_client() -> None:
    world = World()
    assert await world.registry.rotate_secret("ghost") is None
    await world.registry.create(client_id="app", scopes=("a",))
    world.storage.clients.set_secret_succeeds = False
    assert await world.registry.rotate_secret("app") is None
    assert world.storage.changes.published == [("client", "app", NOW)]
    assert [kind for kind, _ in world.audit.events] == ["client_created"]


async def test_deletion_revokes_every_token_in_the_same_write() -> None:
    world = World()
    await world.registry.create(client_id="app", scopes=("a",))
    world.clock.advance(5)
    assert await world.registry.delete("app") is True
    assert "app" not in world.storage.clients.rows
    revocation = ClientRevocation(
        client_id="app", revoked_at=NOW + 5, expires_at=NOW + 5 + MAX_TOKEN_AGE
    )
    assert world.storage.clients.calls[-1] == ("delete", ("app", revocation))
    assert world.cutoffs is not None
    assert world.cutoffs.added == [("app", NOW + 5)]  # this process at once
    assert world.storage.changes.published[-1] == ("client", "app", NOW + 5)
    assert world.directory is not None
    assert world.directory.invalidated == ["app", "app"]
    assert world.audit.events[-1] == ("client_deleted", {"client_id": "app"})
    assert await world.registry.delete("app") is False
    assert len(world.storage.changes.published) == 2
    assert len(world.audit.events) == 2
    assert world.cutoffs.added == [("app", NOW + 5)]
    assert world.directory.invalidated == ["app", "app"]


async def test_deletion_without_a_local_cutoff_set() -> None:
    world = World(cutoffs=False, directory=False)
    await world.registry.create(client_id="app", scopes=("a",))
    assert await world.registry.delete("app") is True
    assert world.audit.events[-1] == ("client_deleted", {"client_id": "app"})


def test_a_revocation_is_kept_a_day_and_two_leeways_by_default() -> None:
    registry = ClientRegistry(Storage(), clock=FrozenClock(NOW))  # type: ignore[arg-type]
    assert registry._revocation("app", NOW) == ClientRevocation(
        client_id="app", revoked_at=NOW, expires_at=NOW + 86_400 + 600
    )


async def test_revoking_every_token_of_a_client() -> None:
    world = World()
    await world.registry.create(client_id="app", scopes=("a",))
    world.clock.advance(7)
    assert await world.registry.revoke_tokens("app") is True
    assert world.storage.revocations.clients == [
        ClientRevocation(client_id="app", revoked_at=NOW + 7, expires_at=NOW + 7 + MAX_TOKEN_AGE)
    ]
    assert world.cutoffs is not None
    assert world.cutoffs.added == [("app", NOW + 7)]
    assert "app" in world.storage.clients.rows  # the client stays
    assert world.audit.events[-1] == ("client_tokens_revoked", {"client_id": "app"})
    # An unknown client: nothing recorded, nothing told.
    assert await world.registry.revoke_tokens("ghost") is False
    assert len(world.storage.revocations.clients) == 1
    assert world.cutoffs.added == [("app", NOW + 7)]
    assert world.audit.events[-1] == ("client_tokens_revoked", {"client_id": "app"})
    assert len(world.audit.events) == 2
    # Without a local cutoff set, the stored revocation is still made.
    bare = World(cutoffs=False)
    await bare.registry.create(client_id="app", scopes=("a",))
    assert await bare.registry.revoke_tokens("app") is True
    assert len(bare.storage.revocations.clients) == 1


class GatedClients(MemoryClients):
    """A read that waits, after fetching the row, until ``gate`` is set (a lookup in flight)."""

    def __init__(self, *clients: Client) -> None:
        super().__init__(*clients)
        self.gate = asyncio.Event()
        self.reading = asyncio.Event()

    async def get(self, *, client_id: str) -> Client | None:
        row = await super().get(client_id=client_id)
        self.reading.set()
        await self.gate.wait()
        return row


async def test_every_change_during_a_lookup_keeps_its_row_out_of_the_cache() -> None:
    # Not only the first one: an earlier change must not make the next one count for less.
    clients = GatedClients(make_client("app"))
    directory = ClientDirectory(clients)
    directory.invalidate("other")  # an earlier, unrelated change
    in_flight = asyncio.create_task(directory.get("app"))
    await clients.reading.wait()
    del clients.rows["app"]
    directory.on_change(Change(change_id=1, kind="client", key="app"))  # deleted meanwhile
    clients.gate.set()
    assert await in_flight is not None  # read before the deletion: answered once
    assert await directory.get("app") is None
    assert clients.lookups == 2


async def test_a_client_may_have_every_supported_grant() -> None:
    grants = ("client_credentials", "authorization_code", "refresh_token")
    created = await World().registry.create(
        client_id="all", grant_types=grants, redirect_uris=("https://app.example/cb",)
    )
    assert created.client.grant_types == frozenset(grants)


async def test_a_public_client_has_no_secret_to_rotate() -> None:
    world = World()
    await world.registry.create(client_id="spa", client_type="public", **CODE)
    with pytest.raises(InvalidClientMetadata) as caught:
        await world.registry.rotate_secret("spa")
    assert str(caught.value) == "a public client has no secret to rotate"
    assert world.storage.clients.calls == [("add", "spa")]


async def test_an_update_changes_what_it_names_and_keeps_the_rest() -> None:
    world = World()
    await world.registry.create(
        client_id="app", name="Old", scopes=("a", "b", "c"), default_scopes=("a",)
    )
    world.clock.advance(10)
    renamed = await world.registry.update("app", name="New")
    assert renamed is not None
    assert (renamed.name, renamed.scopes, renamed.default_scopes) == (
        "New",
        frozenset({"a", "b", "c"}),
        ("a",),
    )
    assert renamed.updated_at == NOW + 10
    defaults = await world.registry.update("app", default_scopes=("c", "b"))
    assert defaults is not None
    assert (defaults.name, defaults.default_scopes) == ("New", ("c", "b"))
    assert world.storage.clients.rows["app"] == defaults
    assert world.storage.changes.published[-1] == ("client", "app", NOW + 10)
    kind, fields = world.audit.events[-1]
    assert kind == "client_updated"
    assert set(fields) == {"client_id", "scope"}
    assert fields["client_id"] == "app"
    assert sorted(fields["scope"].split(" ")) == ["a", "b", "c"]
    narrowed = await world.registry.update("app", scopes=("b", "c"))
    assert narrowed is not None
    assert (narrowed.scopes, narrowed.default_scopes) == (frozenset({"b", "c"}), ("b", "c"))
    assert await world.registry.update("ghost", name="x") is None


@pytest.mark.parametrize("field", ["scopes", "default_scopes"])
async def test_an_update_with_a_malformed_scope_changes_nothing(field: str) -> None:
    world = World()
    await world.registry.create(client_id="app", scopes=("a",))
    before = world.storage.clients.rows["app"]
    with pytest.raises(InvalidClientMetadata) as caught:
        await world.registry.update("app", **{field: ('a"b',)})  # type: ignore[arg-type]
    assert str(caught.value) == "invalid scope: the scope parameter is malformed"
    assert world.storage.clients.rows["app"] is before
    assert world.storage.changes.published == [("client", "app", NOW)]
