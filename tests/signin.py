"""Sign-in test helpers: clients, users and authorization codes put straight into storage, as
the authorization endpoint will (the grants only redeem them)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass

from oauth_server.crypto import hash_secret, new_split_token
from oauth_server.storage.models import AuthorizationCode, Client, User
from oauth_server.storage.protocols import Storage

PUBLIC_ID = "spa"
CONFIDENTIAL_ID = "webapp"
CONFIDENTIAL_SECRET = "webapp-secret-0123456789abcdef"
OTHER_ID = "other-spa"
REDIRECT = "http://127.0.0.1:9999/callback"
USER_ID = "user-alice"
SCOPES = frozenset(
    {"openid", "profile", "email", "offline_access", "restaurants:read", "restaurent"}
)
USER_GRANTS = frozenset({"authorization_code", "refresh_token"})


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def new_verifier() -> str:
    return secrets.token_urlsafe(48)  # 64 characters of the unreserved set


def public_client(client_id: str = PUBLIC_ID, **fields: object) -> Client:
    values: dict[str, object] = {
        "client_id": client_id,
        "secret_hash": None,
        "client_type": "public",
        "auth_methods": frozenset({"none"}),
        "grant_types": USER_GRANTS,
        "scopes": SCOPES,
        "redirect_uris": (REDIRECT,),
    }
    values.update(fields)
    return Client(**values)  # type: ignore[arg-type]


def confidential_client(**fields: object) -> Client:
    values: dict[str, object] = {
        "client_id": CONFIDENTIAL_ID,
        "secret_hash": hash_secret(CONFIDENTIAL_SECRET),
        "grant_types": USER_GRANTS | {"client_credentials"},
        "scopes": SCOPES,
        "redirect_uris": (REDIRECT,),
    }
    values.update(fields)
    return Client(**values)  # type: ignore[arg-type]


async def add_world(storage: Storage, *, user_disabled: bool = False) -> None:
    """The public client, another public client, the confidential one and the user alice."""
    for client in (public_client(), public_client(OTHER_ID), confidential_client()):
        await storage.clients.add(client=client)
    await storage.users.add(
        user=User(user_id=USER_ID, username="alice", password_hash="x", disabled=user_disabled)
    )


@dataclass(frozen=True)
class SeededCode:
    code: str
    verifier: str
    selector: bytes


async def seed_code(
    storage: Storage,
    *,
    now: float,
    client_id: str = PUBLIC_ID,
    scope: str = "restaurants:read",
    redirect_uri: str = REDIRECT,
    pkce: bool = True,
    ttl: int = 60,
    user_id: str = USER_ID,
    resource: str = "",
) -> SeededCode:
    """An authorization code as the authorization endpoint stores it."""
    verifier = new_verifier()
    token = new_split_token(now)
    await storage.codes.add(
        code=AuthorizationCode(
            selector=token.selector,
            verifier_hash=token.verifier_hash,
            client_id=client_id,
            redirect_uri=redirect_uri,
            user_id=user_id,
            scope=scope,
            issued_at=int(now),
            expires_at=int(now) + ttl,
            code_challenge=s256(verifier) if pkce else "",
            code_challenge_method="S256" if pkce else "",
            resource=resource,
        )
    )
    return SeededCode(token.value, verifier, token.selector)
