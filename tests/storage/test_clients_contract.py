"""The client repository's registration fields, on every backend (SQLite and PostgreSQL
through ``database_url``): a round trip of every new field, ``update``, and migration 0007
turning a row written under 0006 into today's confidential client."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import asyncpg
import pytest
from sqlalchemy import text

from oauth_server.crypto import hash_secret, verify_secret
from oauth_server.storage import Client, SqlStorage, open_storage
from oauth_server.storage.migrate import current_revision, head_revision, upgrade
from tests.conftest import PG_ADMIN_URL

PUBLIC = Client(
    client_id="spa",
    secret_hash=None,
    name="My App",
    grant_types=frozenset({"authorization_code", "refresh_token"}),
    scopes=frozenset({"openid", "profile", "offline_access"}),
    default_scopes=("openid",),
    created_at=1,
    updated_at=2,
    client_type="public",
    auth_methods=frozenset({"none"}),
    # Order kept: not the sorted order.
    redirect_uris=("https://z.example/cb", "http://127.0.0.1/cb", "com.example.app:/cb"),
    post_logout_redirect_uris=("https://z.example/bye", "https://a.example/bye"),
    require_consent=False,
    require_pkce=True,
)


async def test_registration_fields_round_trip(storage: SqlStorage) -> None:
    await storage.clients.add(client=PUBLIC)
    assert await storage.clients.get(client_id="spa") == PUBLIC
    web = Client(
        client_id="web",
        secret_hash=hash_secret("s"),
        grant_types=frozenset({"authorization_code"}),
        auth_methods=frozenset({"client_secret_basic"}),
        redirect_uris=("https://web.example/cb",),
        require_pkce=False,
    )
    await storage.clients.add(client=web)
    assert await storage.clients.get(client_id="web") == web
    legacy = Client(client_id="svc", secret_hash=hash_secret("s"))
    await storage.clients.add(client=legacy)
    assert await storage.clients.get(client_id="svc") == legacy
    assert [c.client_type for c in await storage.clients.list()] == [
        "public",
        "confidential",
        "confidential",
    ]


async def test_update_replaces_the_metadata_but_never_the_secret_or_creation_time(
    storage: SqlStorage,
) -> None:
    await storage.clients.add(client=replace(PUBLIC, client_id="web", client_type="confidential"))
    await storage.clients.set_secret_hash(client_id="web", secret_hash=hash_secret("s"), now=3)
    changed = replace(
        PUBLIC,
        client_id="web",
        client_type="confidential",
        auth_methods=frozenset({"client_secret_post"}),
        name="Renamed",
        redirect_uris=("https://new.example/cb",),
        post_logout_redirect_uris=(),
        require_consent=True,
        require_pkce=False,
        scopes=frozenset({"openid"}),
        default_scopes=(),
        secret_hash=None,  # ignored: update never touches the secret
        created_at=999,  # ignored
        updated_at=10,
    )
    assert await storage.clients.update(client=changed)
    stored = await storage.clients.get(client_id="web")
    assert stored is not None
    assert stored.secret_hash is not None
    assert verify_secret("s", stored.secret_hash)
    assert stored == replace(changed, secret_hash=stored.secret_hash, created_at=1)
    assert not await storage.clients.update(client=replace(changed, client_id="ghost"))
    assert await storage.clients.get(client_id="ghost") is None


@pytest.fixture
async def unmigrated_url(database_url: str) -> AsyncIterator[str]:
    """An empty database with no schema at all: a fresh SQLite file, or a PostgreSQL
    database of its own (the session's is at head already)."""
    if database_url.startswith("sqlite"):
        yield database_url
        return
    name = f"oauth_test_mig_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_ADMIN_URL, timeout=3)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield f"{PG_ADMIN_URL.rpartition('/')[0]}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_migration_0007_keeps_old_clients_confidential_with_both_secret_methods(
    unmigrated_url: str,
) -> None:
    store = open_storage(unmigrated_url, pool_size=2)
    try:
        await upgrade(store.engine, "0006")
        assert await current_revision(store.engine) == "0006"
        async with store.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO clients (client_id, secret_hash, name, grant_types, scopes, "
                    "default_scopes, token_format, resources, created_at, updated_at, "
                    "introspect) VALUES ('old', :hash, 'Old', 'client_credentials', "
                    "'restaurent', 'restaurent', 'jwt', '', 1, 2, '')"
                ),
                {"hash": hash_secret("s3cret")},
            )
        await store.migrate()
        assert await current_revision(store.engine) == head_revision()
        old = await store.clients.get(client_id="old")
        assert old is not None
        assert old == Client(
            client_id="old",
            secret_hash=old.secret_hash,
            name="Old",
            grant_types=frozenset({"client_credentials"}),
            scopes=frozenset({"restaurent"}),
            default_scopes=("restaurent",),
            token_format="jwt",
            created_at=1,
            updated_at=2,
            client_type="confidential",
            auth_methods=frozenset({"client_secret_basic", "client_secret_post"}),
            redirect_uris=(),
            post_logout_redirect_uris=(),
            require_consent=True,
            require_pkce=True,
        )
    finally:
        await store.close()
