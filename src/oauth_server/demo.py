"""The development demo data's identity: what seeding creates, and how to tell it is still there.

Here, apart from :mod:`oauth_server.bootstrap` (which seeds it) so that the self-check
(:mod:`oauth_server.selfcheck`), which bootstrap runs, can look for it too.
"""

from __future__ import annotations

from oauth_server.crypto import verify_secret
from oauth_server.storage import Storage

__all__ = [
    "DEMO_CLIENT_ID",
    "DEMO_CLIENT_SECRET",
    "DEMO_SCOPES",
    "DEMO_USERNAME",
    "DEMO_USER_META",
    "demo_client_present",
    "demo_user_present",
]

DEMO_CLIENT_ID = "admin"
DEMO_CLIENT_SECRET = "getroot"
DEMO_SCOPES = ("restaurent", "restaurants:read", "restaurants:write")
DEMO_USERNAME = "demo"
DEMO_USER_META = "demo_user"
"""``server_meta`` key: the id of the demo user that seeding created."""


async def demo_client_present(storage: Storage) -> bool:
    """Whether the client ``admin`` exists with the published secret ``getroot``."""
    client = await storage.clients.get(client_id=DEMO_CLIENT_ID)
    return bool(
        client and client.secret_hash and verify_secret(DEMO_CLIENT_SECRET, client.secret_hash)
    )


async def demo_user_present(storage: Storage) -> bool:
    """Whether the user that development seeding created still exists (a user named ``demo``
    that an operator created is not the demo user)."""
    user_id = await storage.meta.get(key=DEMO_USER_META)
    return user_id is not None and await storage.users.get(user_id=user_id) is not None
