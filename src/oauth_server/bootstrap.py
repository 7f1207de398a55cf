"""Start-up work shared by ``oauth-server serve`` and the app: migrate, seed, refuse unsafe."""

from __future__ import annotations

import logging
import secrets
from contextlib import suppress
from dataclasses import dataclass

from oauth_server.audit import NO_AUDIT, AuditRecorder
from oauth_server.clock import Clock
from oauth_server.config import Settings
from oauth_server.demo import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_SCOPES,
    DEMO_USER_META,
    DEMO_USERNAME,
    demo_client_present,
)
from oauth_server.oauth.clients import ClientRegistry
from oauth_server.oauth.keys import KeyError_
from oauth_server.resource.restaurants import restaurant_from_document
from oauth_server.selfcheck import Report, check_deployment
from oauth_server.services import build_accounts, build_key_manager
from oauth_server.storage import AlreadyExists, Storage

__all__ = [
    "DEMO_CLIENT_ID",
    "DEMO_CLIENT_SECRET",
    "DEMO_SCOPES",
    "DEMO_USERNAME",
    "StartupRefused",
    "StartupReport",
    "prepare",
    "refuse_unsafe_production",
]

log = logging.getLogger(__name__)

_DEMO_SEEDED = "demo_seeded"

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
    checked = (
        not production
        or (await refuse_unsafe_production(settings, storage, clock=clock)).schema_current
    )
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


async def refuse_unsafe_production(settings: Settings, storage: Storage, *, clock: Clock) -> Report:
    """Run the self-check (:mod:`oauth_server.selfcheck`) and raise :class:`StartupRefused`
    naming every critical finding — the settings', and the stored data's (the demo client and
    user, signing keys that do not decrypt, invalid clients) — reading the database, never
    writing to it. The report's ``schema_current`` says whether the stored data could be read:
    not while the schema is missing or older than this version's."""
    report = await check_deployment(settings, clock=clock, storage=storage)
    if report.critical:
        raise StartupRefused(
            "refusing to start in production (`oauth-server check` explains each):\n  - "
            + "\n  - ".join(
                f"[{finding.id}] {finding.message} (change: {finding.setting})"
                for finding in report.critical
            )
        )
    return report


async def _seed_demo_user(
    settings: Settings, storage: Storage, *, clock: Clock, audit: AuditRecorder
) -> str | None:
    """Create the demo user on the first start in development, with a random password that is
    returned (for the banner) and never stored or logged."""
    if await storage.meta.get(key=DEMO_USER_META) is not None:
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
    await storage.meta.set(key=DEMO_USER_META, value=user.user_id)
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
