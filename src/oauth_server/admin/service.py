"""The admin core: clients, users, their consents and sessions, signing keys, token
revocation and the audit trail, for the admin API (and the CLI where it does the same).

Framework-free: callers pass plain values and get frozen records back. Every change is made
through the component that owns it (:class:`~oauth_server.oauth.clients.ClientRegistry`,
:class:`~oauth_server.accounts.Accounts`, :class:`~oauth_server.oauth.keys.KeyManager`) with an
:class:`~oauth_server.audit.ActingAudit`, so its audit event names the acting client (and
user). Errors are the one hierarchy's: :class:`~oauth_server.errors.NotFound` (404),
:class:`~oauth_server.errors.Conflict` (409), :class:`~oauth_server.errors.InvalidFields`
(422, naming the field).

Who may act is decided in :meth:`Admin.actor`, on every request: the token's client must still
be an admin client, and a token issued for a user is honoured only while that user exists, is
enabled and is an admin — the flag is read each time, so a withdrawal counts from the next
request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from oauth_server.accounts import Accounts, InvalidPassword, InvalidUserData
from oauth_server.audit import ActingAudit, AuditRecorder
from oauth_server.clock import Clock
from oauth_server.errors import Conflict, InsufficientScope, InvalidFields, NotFound
from oauth_server.oauth.clients import (
    ClientDirectory,
    ClientRegistry,
    InvalidClientMetadata,
    NewClient,
)
from oauth_server.oauth.keys import KeyManager
from oauth_server.oauth.scopes import ADMIN_SCOPE
from oauth_server.oauth.tokens.verify.claims import AccessClaims
from oauth_server.storage.models import (
    AuditQuery,
    AuditRecord,
    AuthMethod,
    Client,
    ClientType,
    Consent,
    TokenFormat,
    User,
    UserProfileChanges,
)
from oauth_server.storage.protocols import AlreadyExists, Storage

__all__ = ["ADMIN_REALM", "Actor", "Admin", "Page", "client_metadata_field"]

ADMIN_REALM = "admin"
T = TypeVar("T")
_AUDIT_CURSOR = re.compile(r"([0-9]{1,15})\.([0-9a-f]{32})\.([0-9]{1,15})")


@dataclass(frozen=True, slots=True)
class Actor:
    """Who makes an admin request: the token's client, and its user for a user's token."""

    client_id: str
    user_id: str | None = None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None
    """Pass back as the cursor for the next page; ``None`` at the end."""


# Which request field a registration rule is about, by the words of its message (the rules
# live in oauth.clients.check_client; the admin API names the field, the CLI the message).
_CLIENT_FIELDS = (
    ("post-logout redirect uri", "post_logout_redirect_uris"),
    ("redirect uri", "redirect_uris"),
    ("client_id", "client_id"),
    ("default scope", "default_scopes"),
    ("scope", "scopes"),
    ("grant", "grant_types"),
    ("pkce", "require_pkce"),
    ("authenticates", "auth_methods"),
    ("introspection audience", "introspect"),
    ("resource", "resources"),
    ("token format", "token_format"),
    ("client type", "client_type"),
    ("public client", "client_type"),
)


def client_metadata_field(message: str) -> str:
    """The request field a :class:`InvalidClientMetadata` message is about."""
    lowered = message.lower()
    for words, field in _CLIENT_FIELDS:
        if words in lowered:
            return field
    return "body"


_USER_FIELDS = (
    "username",
    "email_verified",
    "preferred_username",
    "given_name",
    "family_name",
    "email",
    "name",
)


def _user_field(message: str) -> str:
    for field in _USER_FIELDS:
        if re.search(rf"\b{field}\b", message):
            return field
    return "body"


def _invalid_client(exc: InvalidClientMetadata) -> InvalidFields:
    return InvalidFields({client_metadata_field(str(exc)): str(exc)})


def _invalid_user(exc: InvalidUserData) -> InvalidFields:
    return InvalidFields({_user_field(str(exc)): str(exc)})


def _page(items: list[T], limit: int, key: Any) -> Page[T]:
    """``items`` holds up to ``limit + 1`` rows: one more than the page means there is a next."""
    if len(items) > limit:
        return Page(items[:limit], key(items[limit - 1]))
    return Page(items, None)


def audit_cursor(record: AuditRecord) -> str:
    return f"{record.at_ms}.{record.chain_id}.{record.seq}"


def parse_audit_cursor(cursor: str) -> tuple[int, str, int]:
    match = _AUDIT_CURSOR.fullmatch(cursor)
    if match is None:
        raise InvalidFields({"cursor": "not a cursor this server returned"})
    return int(match[1]), match[2], int(match[3])


class Admin:
    """Administration of one server; see the module docstring."""

    def __init__(
        self,
        storage: Storage,
        *,
        registry: ClientRegistry,
        directory: ClientDirectory,
        accounts: Accounts,
        keys: KeyManager,
        audit: AuditRecorder,
        clock: Clock,
    ) -> None:
        self._storage = storage
        self._registry = registry
        self._directory = directory
        self._accounts = accounts
        self._keys = keys
        self._audit = audit
        self._clock = clock

    # --- Who acts ---------------------------------------------------------------------------

    async def actor(self, claims: AccessClaims) -> Actor:
        """The actor of a verified token holding the ``admin`` scope, or 403.

        The client must still be registered with the ``admin`` scope (its cached registration,
        which a change clears everywhere within the sync interval). A token whose subject is
        not its client was issued for a user: that user must exist, be enabled and be an admin
        now — read from the database on every request.
        """
        client = await self._directory.get(claims.client_id)
        if client is None or ADMIN_SCOPE not in client.scopes:
            raise InsufficientScope(
                "the token's client is not an admin client", realm=ADMIN_REALM, scope=ADMIN_SCOPE
            )
        if claims.subject == claims.client_id:
            return Actor(client_id=claims.client_id)
        user = await self._storage.users.get(user_id=claims.subject)
        if user is None or user.disabled or not user.is_admin:
            raise InsufficientScope(
                "the token's user is not an administrator", realm=ADMIN_REALM, scope=ADMIN_SCOPE
            )
        return Actor(client_id=claims.client_id, user_id=user.user_id)

    def _recorder(self, actor: Actor) -> ActingAudit:
        return ActingAudit(self._audit, client_id=actor.client_id, user_id=actor.user_id)

    def _registry_for(self, actor: Actor) -> ClientRegistry:
        return self._registry.acting(self._recorder(actor))

    def _accounts_for(self, actor: Actor) -> Accounts:
        return self._accounts.acting(self._recorder(actor))

    # --- Clients ----------------------------------------------------------------------------

    async def list_clients(
        self, *, limit: int, cursor: str | None = None, search: str | None = None
    ) -> Page[Client]:
        found = await self._registry.list(limit=limit + 1, after=cursor, search=search)
        return _page(found, limit, lambda client: client.client_id)

    async def get_client(self, client_id: str) -> Client:
        client = await self._registry.get(client_id)
        if client is None:
            raise NotFound(f"no client {client_id[:64]!r}")
        return client

    async def create_client(
        self,
        actor: Actor,
        *,
        client_id: str | None = None,
        name: str = "",
        client_type: ClientType = "confidential",
        grant_types: Iterable[str] | None = None,
        scopes: Iterable[str] = (),
        default_scopes: Iterable[str] | None = None,
        token_format: TokenFormat = "jwt",
        resources: Iterable[str] = (),
        introspect: Iterable[str] = (),
        auth_methods: Iterable[AuthMethod] | None = None,
        redirect_uris: Iterable[str] = (),
        post_logout_redirect_uris: Iterable[str] = (),
        require_consent: bool = True,
        require_pkce: bool = True,
        admin: bool = False,
    ) -> NewClient:
        """Register a client; the secret is in the result, this once. Without grant types: a
        public client gets ``authorization_code`` and ``refresh_token``, a confidential one
        ``client_credentials`` (as the CLI)."""
        if grant_types is None:
            grant_types = (
                ("authorization_code", "refresh_token")
                if client_type == "public"
                else ("client_credentials",)
            )
        try:
            return await self._registry_for(actor).create(
                client_id=client_id,
                name=name,
                client_type=client_type,
                grant_types=grant_types,
                scopes=scopes,
                default_scopes=default_scopes,
                token_format=token_format,
                resources=resources,
                introspect=introspect,
                auth_methods=auth_methods,
                redirect_uris=redirect_uris,
                post_logout_redirect_uris=post_logout_redirect_uris,
                require_consent=require_consent,
                require_pkce=require_pkce,
                admin=admin,
            )
        except AlreadyExists:
            raise Conflict(f"a client {client_id!r} exists already") from None
        except InvalidClientMetadata as exc:
            raise _invalid_client(exc) from None

    async def update_client(
        self,
        actor: Actor,
        client_id: str,
        *,
        name: str | None = None,
        scopes: Iterable[str] | None = None,
        default_scopes: Iterable[str] | None = None,
        redirect_uris: Iterable[str] | None = None,
        post_logout_redirect_uris: Iterable[str] | None = None,
        require_consent: bool | None = None,
    ) -> Client:
        try:
            updated = await self._registry_for(actor).update(
                client_id,
                name=name,
                scopes=scopes,
                default_scopes=default_scopes,
                redirect_uris=redirect_uris,
                post_logout_redirect_uris=post_logout_redirect_uris,
                require_consent=require_consent,
            )
        except InvalidClientMetadata as exc:
            raise _invalid_client(exc) from None
        if updated is None:
            raise NotFound(f"no client {client_id[:64]!r}")
        return updated

    async def rotate_client_secret(self, actor: Actor, client_id: str) -> NewClient:
        try:
            rotated = await self._registry_for(actor).rotate_secret(client_id)
        except InvalidClientMetadata as exc:
            raise Conflict(str(exc)) from None
        if rotated is None:
            raise NotFound(f"no client {client_id[:64]!r}")
        return rotated

    async def delete_client(self, actor: Actor, client_id: str) -> None:
        """Delete the client and void every token issued to it."""
        if not await self._registry_for(actor).delete(client_id):
            raise NotFound(f"no client {client_id[:64]!r}")

    async def revoke_client_tokens(self, actor: Actor, client_id: str) -> None:
        """Void every access token issued to the client up to now."""
        if not await self._registry_for(actor).revoke_tokens(client_id):
            raise NotFound(f"no client {client_id[:64]!r}")

    # --- Users ------------------------------------------------------------------------------

    async def list_users(
        self, *, limit: int, cursor: str | None = None, search: str | None = None
    ) -> Page[User]:
        found = await self._accounts.list(limit=limit + 1, after=cursor, search=search)
        return _page(found, limit, lambda user: user.username)

    async def get_user(self, user_id: str) -> User:
        user = await self._accounts.get(user_id)
        if user is None:
            raise NotFound("no such user")
        return user

    async def create_user(
        self,
        actor: Actor,
        *,
        username: str,
        password: str,
        name: str = "",
        given_name: str = "",
        family_name: str = "",
        preferred_username: str | None = None,
        email: str = "",
        email_verified: bool = False,
        is_admin: bool = False,
    ) -> User:
        try:
            return await self._accounts_for(actor).create(
                username,
                password,
                name=name,
                given_name=given_name,
                family_name=family_name,
                preferred_username=preferred_username,
                email=email,
                email_verified=email_verified,
                is_admin=is_admin,
            )
        except AlreadyExists:
            raise Conflict("that username is taken") from None
        except InvalidUserData as exc:
            raise _invalid_user(exc) from None
        except InvalidPassword as exc:
            raise InvalidFields({"password": str(exc)}) from None

    async def update_user(self, actor: Actor, user_id: str, changes: UserProfileChanges) -> User:
        try:
            user = await self._accounts_for(actor).update_profile(user_id, changes)
        except InvalidUserData as exc:
            raise _invalid_user(exc) from None
        if user is None:
            raise NotFound("no such user")
        return user

    async def set_disabled(self, actor: Actor, user_id: str, disabled: bool) -> User:
        """Disable (ending its sessions and refresh tokens) or enable; idempotent."""
        await self.get_user(user_id)
        await self._accounts_for(actor).set_disabled(user_id, disabled)
        return await self.get_user(user_id)

    async def set_admin(self, actor: Actor, user_id: str, is_admin: bool) -> User:
        """Grant or withdraw the admin flag; idempotent. A withdrawal counts from the user's
        next admin request (:meth:`actor` reads the flag each time)."""
        await self.get_user(user_id)
        await self._accounts_for(actor).set_admin(user_id, is_admin)
        return await self.get_user(user_id)

    async def set_password(self, actor: Actor, user_id: str, password: str) -> None:
        """Replace the password; the user's sessions and refresh tokens end."""
        try:
            changed = await self._accounts_for(actor).set_password(user_id, password)
        except InvalidPassword as exc:
            raise InvalidFields({"password": str(exc)}) from None
        if not changed:
            raise NotFound("no such user")

    async def delete_user(self, actor: Actor, user_id: str) -> None:
        if not await self._accounts_for(actor).delete(user_id):
            raise NotFound("no such user")

    async def consents(self, user_id: str) -> list[Consent]:
        await self.get_user(user_id)
        return await self._storage.consents.list_for_user(user_id=user_id)

    async def revoke_consent(self, actor: Actor, user_id: str, client_id: str) -> None:
        """Forget the user's consent to the client: its scopes are asked for again."""
        await self.get_user(user_id)
        if not await self._storage.consents.revoke(user_id=user_id, client_id=client_id):
            raise NotFound("the user has no consent for that client")
        self._recorder(actor).record("consent_revoked", user_id=user_id, client_id=client_id)

    async def end_sessions(self, actor: Actor, user_id: str) -> int:
        """End every browser session of the user (sign out everywhere); how many ended."""
        user = await self.get_user(user_id)
        ended = await self._storage.sessions.end_all_for_user(
            user_id=user_id, now=int(self._clock.now())
        )
        self._recorder(actor).record(
            "user_sessions_ended", user_id=user_id, username=user.username, count=ended
        )
        return ended

    async def revoke_user_tokens(self, actor: Actor, user_id: str) -> tuple[int, int]:
        """Revoke every refresh-token family of the user (their access tokens too) and end
        its sessions; the numbers of families revoked and sessions ended."""
        user = await self.get_user(user_id)
        now = int(self._clock.now())
        recorder = self._recorder(actor)
        revoked = await self._storage.refresh_tokens.revoke_for_user(user_id=user_id, now=now)
        for family_id in revoked.family_ids:
            recorder.record(
                "refresh_family_revoked", user_id=user_id, family_id=family_id, reason="admin"
            )
        ended = await self._storage.sessions.end_all_for_user(user_id=user_id, now=now)
        recorder.record(
            "user_tokens_revoked",
            user_id=user_id,
            username=user.username,
            count=len(revoked.family_ids),
        )
        return len(revoked.family_ids), ended

    # --- Signing keys -----------------------------------------------------------------------

    async def list_keys(self) -> list[dict[str, Any]]:
        """Every stored key with its state (as ``oauth-server keys list``)."""
        await self._keys.load()
        return self._keys.describe()

    async def rotate_key(self, actor: Actor, *, immediately: bool = False) -> str | None:
        """Publish a new key; its kid (``None`` if another instance created one first)."""
        return await self._keys.rotate(immediately=immediately, audit=self._recorder(actor))

    async def remove_key(self, actor: Actor, kid: str) -> None:
        """Withdraw a key at once (compromise); a new one signs if it was the signing key."""
        if not await self._keys.remove(kid, audit=self._recorder(actor)):
            raise NotFound("no such key, or removed already")

    # --- Audit trail ------------------------------------------------------------------------

    async def audit_events(
        self,
        *,
        limit: int,
        kinds: tuple[str, ...] = (),
        client_id: str | None = None,
        user_id: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        cursor: str | None = None,
    ) -> Page[AuditRecord]:
        """Events matching every criterion given, newest first, a page at a time."""
        query = AuditQuery(
            kinds=kinds,
            client_id=client_id,
            user_id=user_id,
            since_ms=since_ms,
            until_ms=until_ms,
            before=None if cursor is None else parse_audit_cursor(cursor),
        )
        found = await self._storage.audit.query(query=query, limit=limit + 1)
        return _page(found, limit, audit_cursor)
