"""Start-up work shared by ``oauth-server serve`` and the app: migrate, seed, refuse unsafe."""

from __future__ import annotations

import logging
import os
import secrets
from contextlib import suppress
from dataclasses import dataclass

from oauth_server.audit import NO_AUDIT, AuditRecorder
from oauth_server.clock import Clock
from oauth_server.config import Settings
from oauth_server.crypto import verify_secret
from oauth_server.oauth.clients import ClientRegistry
from oauth_server.oauth.keys import KeyError_
from oauth_server.resource.restaurants import restaurant_from_document
from oauth_server.services import build_accounts, build_key_manager
from oauth_server.storage import AlreadyExists, Storage
from oauth_server.storage.sql.engine import sqlite_file

__all__ = [
    "DEMO_CLIENT_ID",
    "DEMO_CLIENT_SECRET",
    "DEMO_USERNAME",
    "StartupRefused",
    "StartupReport",
    "prepare",
    "refuse_unsafe_production",
]

log = logging.getLogger(__name__)

DEMO_CLIENT_ID = "admin"
DEMO_CLIENT_SECRET = "getroot"
DEMO_SCOPES = ("restaurent", "restaurants:read", "restaurants:write")
_DEMO_SEEDED = "demo_seeded"
DEMO_USERNAME = "demo"
_DEMO_USER = "demo_user"  # server_meta key: the id of the demo user seeding created

# Fixed ids make seeding idempotent when several workers start at once.
DEMO_RESTAURANTS = [
    {
        "_id": {"$oid": "5f1a2b3c4d5e6f7a8b9c0d01"},
        "Name": "Chez Panisse",
        "Address": "1517 Shattuck Ave, Berkeley, CA",
        "routine": {"open": "17:30", "close": "22:00"},
    },
    {
        "_id": {"$oid": "5f1a2b3c4d5e6f7a8b9c0d02"},
        "Name": "Le Bernardin",
        "Address": "155 W 51st St, New York, NY",
        "routine": {"open": "12:00", "close": "22:30"},
    },
    {
        "_id": {"$oid": "5f1a2b3c4d5e6f7a8b9c0d03"},
        "Name": "Noma",
        "Address": "Refshalevej 96, Copenhagen",
        "routine": {"open": "18:00", "close": "23:00"},
    },
    {
        "_id": {"$oid": "5f1a2b3c4d5e6f7a8b9c0d04"},
        "Name": "Sukiyabashi Jiro",
        "Address": "4-2-15 Ginza, Chuo City, Tokyo",
        "routine": {"open": "11:30", "close": "20:30"},
    },
    {
        "_id": {"$oid": "5f1a2b3c4d5e6f7a8b9c0d05"},
        "Name": "Osteria Francescana",
        "Address": "Via Stella 22, Modena",
        "routine": {"open": "12:30", "close": "21:30"},
    },
]


class StartupRefused(Exception):
    """The server must not start with this configuration or data; the message says why."""


@dataclass(frozen=True, slots=True)
class StartupReport:
    demo_client_present: bool
    demo_user_password: str | None = None
    """The demo user's random password when this start created the user, else ``None``: it
    is shown once, in the banner, and stored only as its hash."""


async def prepare(
    settings: Settings, storage: Storage, *, clock: Clock, audit: AuditRecorder = NO_AUDIT
) -> StartupReport:
    """Refuse unsafe production set-ups, then migrate the database, create the first signing
    key and, in development, seed the demo data.

    Production is checked before anything is written — not the schema, not a key, not a demo
    row — so a misconfigured instance leaves a shared database as it found it.
    """
    production = settings.env == "production"
    checked = not production or await refuse_unsafe_production(settings, storage, clock=clock)
    await storage.migrate()
    if not checked:
        # The schema was missing or older than this version's: its rows are readable only now.
        await refuse_unsafe_production(settings, storage, clock=clock)
    try:
        # Creates the first signing key, or proves the stored ones decrypt with this secret.
        await build_key_manager(settings, storage, clock, audit=audit).ensure_current()
    except KeyError_ as exc:
        raise StartupRefused(str(exc)) from None
    demo_password = None
    if settings.seed_demo_data:
        await _seed_demo_data(storage, clock=clock, audit=audit)
        demo_password = await _seed_demo_user(settings, storage, clock=clock, audit=audit)
    return StartupReport(
        demo_client_present=await demo_client_present(storage), demo_user_password=demo_password
    )


async def refuse_unsafe_production(settings: Settings, storage: Storage, *, clock: Clock) -> bool:
    """Raise :class:`StartupRefused` naming every reason this production start is unsafe —
    the settings', and the stored data's (the demo client and user, signing keys that do not
    decrypt) — reading the database, never writing to it. Returns whether the stored data could
    be read: not while the schema is missing or older than this version's."""
    problems = settings.production_problems()
    readable = await _schema_is_current(settings, storage)
    if readable:
        if await demo_client_present(storage):
            problems.append(
                f"the demo client {DEMO_CLIENT_ID!r} with its published secret exists; "
                f"delete it with `oauth-server clients delete {DEMO_CLIENT_ID}`"
            )
        if await demo_user_present(storage):
            problems.append(
                f"the development demo user {DEMO_USERNAME!r} exists; "
                f"delete it with `oauth-server users delete {DEMO_USERNAME}`"
            )
        if settings.secret_key is not None:  # without one, production_problems said so
            try:
                await build_key_manager(settings, storage, clock).load()  # reads, decrypts
            except KeyError_ as exc:
                problems.append(str(exc))
    if problems:
        raise StartupRefused("refusing to start in production:\n  - " + "\n  - ".join(problems))
    return readable


async def _schema_is_current(settings: Settings, storage: Storage) -> bool:
    if _new_sqlite_file(settings.database_url):
        return False
    return await storage.schema_is_current()


def _new_sqlite_file(url: str) -> bool:
    # A database file created a moment ago holds nothing; connecting would write its header.
    path = sqlite_file(url)
    return path is not None and (not os.path.exists(path) or os.path.getsize(path) == 0)


async def demo_client_present(storage: Storage) -> bool:
    client = await storage.clients.get(client_id=DEMO_CLIENT_ID)
    return bool(
        client and client.secret_hash and verify_secret(DEMO_CLIENT_SECRET, client.secret_hash)
    )


async def demo_user_present(storage: Storage) -> bool:
    """Whether the user that development seeding created still exists (a user named ``demo``
    that an operator created is not the demo user)."""
    user_id = await storage.meta.get(key=_DEMO_USER)
    return user_id is not None and await storage.users.get(user_id=user_id) is not None


async def _seed_demo_user(
    settings: Settings, storage: Storage, *, clock: Clock, audit: AuditRecorder
) -> str | None:
    """Create the demo user on the first start in development, with a random password that is
    returned (for the banner) and never stored or logged."""
    if await storage.meta.get(key=_DEMO_USER) is not None:
        return None
    accounts = build_accounts(settings, storage, clock, audit=audit)
    try:
        if await accounts.find(DEMO_USERNAME) is not None:
            return None  # someone's own user of that name: leave it alone
        password = secrets.token_urlsafe(16)
        user = await accounts.create(
            DEMO_USERNAME,
            password,
            name="Demo User",
            given_name="Demo",
            family_name="User",
            email="demo@example.com",  # RFC 2606: a domain that belongs to no one
            email_verified=True,
        )
    except AlreadyExists:  # another instance starting at the same moment created it
        return None
    finally:
        accounts.hashing.close()
    await storage.meta.set(key=_DEMO_USER, value=user.user_id)
    log.warning("created the demo user %r (development only)", DEMO_USERNAME)
    return password


async def _seed_demo_data(storage: Storage, *, clock: Clock, audit: AuditRecorder) -> None:
    if await storage.meta.get(key=_DEMO_SEEDED):
        return
    registry = ClientRegistry(storage, clock=clock, audit=audit)
    with suppress(AlreadyExists):
        await registry.create(
            client_id=DEMO_CLIENT_ID,
            name="Demo client (development only)",
            scopes=DEMO_SCOPES,
            default_scopes=("restaurent",),
            secret=DEMO_CLIENT_SECRET,
        )
    now = int(clock.now())
    await storage.restaurants.add_many(
        restaurants=[restaurant_from_document(doc, now=now) for doc in DEMO_RESTAURANTS]
    )
    await storage.meta.set(key=_DEMO_SEEDED, value=str(now))
    log.warning(
        "seeded the demo client %r and %d restaurants", DEMO_CLIENT_ID, len(DEMO_RESTAURANTS)
    )
