"""Clients: a cached directory for the request path and a registry for management.

The directory answers ``get`` from memory; the registry writes through the repository and
publishes a ``client`` change so that every process drops its cached copy (see
:mod:`oauth_server.sync`).
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, TypedDict, Unpack
from urllib.parse import urlsplit

from oauth_server.audit import NO_AUDIT, AuditFields, AuditKind, AuditRecorder
from oauth_server.cache import TTLCache
from oauth_server.clock import Clock
from oauth_server.crypto import hash_secret, new_secret, new_token
from oauth_server.errors import InvalidScope
from oauth_server.oauth.redirect_uris import InvalidRedirectUri, check_redirect_uri
from oauth_server.oauth.scopes import ADMIN_SCOPE, USER_SCOPES, parse_scope
from oauth_server.storage.models import (
    SECRET_AUTH_METHODS,
    AuthMethod,
    Change,
    Client,
    ClientRevocation,
    ClientType,
    TokenFormat,
)
from oauth_server.storage.protocols import ClientRepository, Storage

if TYPE_CHECKING:
    from oauth_server.oauth.tokens.verify.revocation import RevokedClients

__all__ = [
    "CLIENT_CHANGE",
    "PUBLIC_CLIENT_GRANT_TYPES",
    "SUPPORTED_GRANT_TYPES",
    "ClientChanges",
    "ClientDirectory",
    "ClientOptions",
    "ClientRegistry",
    "InvalidClientMetadata",
    "NewClient",
    "check_client",
]

CLIENT_CHANGE = "client"
SUPPORTED_GRANT_TYPES = frozenset({"client_credentials", "authorization_code", "refresh_token"})
"""Grant types a client may be registered for. ``authorization_code`` and ``refresh_token`` are
metadata until their grants are built; the token endpoint answers ``unsupported_grant_type``
for a grant it does not have."""
PUBLIC_CLIENT_GRANT_TYPES = frozenset({"authorization_code", "refresh_token"})
"""The grants a public client may have, and the only ones for which the token endpoint accepts
``none`` (client_id alone) as authentication: ``client_credentials`` is for confidential
clients only (OAuth 2.1 §4.2)."""
_CLIENT_ID = re.compile(r"[A-Za-z0-9._~-]{1,128}")


class InvalidClientMetadata(ValueError):
    """A client registration that cannot be accepted; the message says why."""


class ClientDirectory:
    """Client lookups for the request path: memory first, the database on a miss.

    Unknown ids are remembered exactly as long as known ones (``ttl``): were they forgotten
    sooner, a made-up id would cost a database read more often than a real one, and the
    timing would tell which ids exist (the authenticator compares a dummy secret for unknown
    ids, so the rest of the work is the same too). Creating a client publishes a change that
    clears its entry everywhere, so a new id works within the sync interval.
    """

    def __init__(
        self,
        repository: ClientRepository,
        *,
        ttl: float = 60.0,
        max_entries: int = 50_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._repository = repository
        self._ttl = ttl
        self._cache: TTLCache[str, Client | None] = TTLCache(
            max_entries=max_entries, monotonic=monotonic
        )
        self._generation = 0

    async def get(self, client_id: str) -> Client | None:
        found, client = self._cache.get(client_id)
        if found:
            return client
        generation = self._generation
        client = await self._repository.get(client_id=client_id)
        # A change that arrived while the row was being read (a deletion, a new secret) may
        # postdate it: answer this once, but do not remember it.
        if generation == self._generation:
            self._cache.set(client_id, client, self._ttl)
        return client

    def invalidate(self, client_id: str) -> None:
        self._generation += 1
        self._cache.pop(client_id)

    def on_change(self, change: Change) -> None:
        self.invalidate(change.key)


class ClientOptions(TypedDict, total=False):
    """The options of :meth:`ClientRegistry.build` and :meth:`ClientRegistry.create`."""

    client_id: str | None
    name: str
    grant_types: Iterable[str]
    scopes: Iterable[str]
    default_scopes: Iterable[str] | None
    token_format: TokenFormat
    resources: Iterable[str]
    introspect: Iterable[str]
    secret: str | None
    client_type: ClientType
    auth_methods: Iterable[AuthMethod] | None
    redirect_uris: Iterable[str]
    post_logout_redirect_uris: Iterable[str]
    require_consent: bool
    require_pkce: bool
    admin: bool


class ClientChanges(TypedDict, total=False):
    """The changes :meth:`ClientRegistry.revise` and :meth:`ClientRegistry.update` take."""

    name: str | None
    scopes: Iterable[str] | None
    default_scopes: Iterable[str] | None
    redirect_uris: Iterable[str] | None
    post_logout_redirect_uris: Iterable[str] | None
    require_consent: bool | None
    grant_types: Iterable[str] | None
    auth_methods: Iterable[AuthMethod] | None


@dataclass(frozen=True, slots=True)
class NewClient:
    """A freshly created client and its secret, which is shown this once and never stored."""

    client: Client
    secret: str | None


class ClientRegistry:
    """Create, rotate and delete clients, and revoke all their tokens; every change is
    published to the change feed and recorded in the audit trail.

    ``max_token_age`` is how long after its ``iat`` a token can still be accepted (the
    access-token lifetime plus leeways): a client-wide revocation is kept that long. The
    default covers the largest lifetime and leeway the settings allow.
    """

    def __init__(
        self,
        storage: Storage,
        *,
        clock: Clock,
        directory: ClientDirectory | None = None,
        revoked_clients: RevokedClients | None = None,
        max_token_age: int = 86_400 + 2 * 300,
        audit: AuditRecorder = NO_AUDIT,
    ) -> None:
        self._storage = storage
        self._clock = clock
        self._directory = directory
        self._revoked_clients = revoked_clients
        self._max_token_age = max_token_age
        self._audit = audit

    def acting(self, audit: AuditRecorder) -> ClientRegistry:
        """This registry recording through ``audit`` (an admin request's actor)."""
        acting = copy.copy(self)
        acting._audit = audit
        return acting

    async def list(
        self, *, limit: int | None = None, after: str | None = None, search: str | None = None
    ) -> list[Client]:
        """Clients ordered by id, a page at a time (see ``ClientRepository.list``)."""
        return await self._storage.clients.list(limit=limit, after=after, search=search)

    async def get(self, client_id: str) -> Client | None:
        """The stored client (not the request path's cached copy)."""
        return await self._storage.clients.get(client_id=client_id)

    async def create(self, **options: Unpack[ClientOptions]) -> NewClient:
        """Register a client (see :meth:`build` for the options and rules) and announce it."""
        new = self.build(**options)
        client = new.client
        await self._storage.clients.add(client=client)
        # The scope as given (build has checked it), so the event reads as the request did.
        scope = " ".join(parse_scope(" ".join(options.get("scopes", ()))))
        await self.announce(client.client_id, "client_created", scope=scope)
        return new

    def build(
        self,
        *,
        client_id: str | None = None,
        name: str = "",
        grant_types: Iterable[str] = ("client_credentials",),
        scopes: Iterable[str] = (),
        default_scopes: Iterable[str] | None = None,
        token_format: TokenFormat = "jwt",
        resources: Iterable[str] = (),
        introspect: Iterable[str] = (),
        secret: str | None = None,
        client_type: ClientType = "confidential",
        auth_methods: Iterable[AuthMethod] | None = None,
        redirect_uris: Iterable[str] = (),
        post_logout_redirect_uris: Iterable[str] = (),
        require_consent: bool = True,
        require_pkce: bool = True,
        admin: bool = False,
    ) -> NewClient:
        """A new client, checked but not stored: a confidential one gets a server-generated
        secret, a public one none (it authenticates with ``none``: its client_id alone). The
        caller stores it (:meth:`create` does) and then calls :meth:`announce`.

        ``introspect``: audiences whose tokens (of any client) it may introspect, as a resource
        server; without, it learns only about its own tokens. ``secret`` is only for the
        development demo client, whose secret the seed README fixes. ``auth_methods``
        defaults to both secret methods for a confidential client (as before client types)
        and is always ``none`` for a public one. ``admin`` adds the ``admin`` scope, which no
        other way grants (:data:`~oauth_server.oauth.scopes.ADMIN_SCOPE`). See
        :func:`check_client` for the rules.
        """
        client_id = client_id or new_token(16)
        if _CLIENT_ID.fullmatch(client_id) is None:
            raise InvalidClientMetadata("client_id must be 1-128 characters of A-Z a-z 0-9 . _ ~ -")
        try:
            allowed = parse_scope(" ".join(scopes))
            if ADMIN_SCOPE in allowed and not admin:
                raise InvalidClientMetadata(
                    "the admin scope is given only to an admin client (clients create --admin)"
                )
            if admin and ADMIN_SCOPE not in allowed:
                allowed = (*allowed, ADMIN_SCOPE)
            defaults = allowed if default_scopes is None else parse_scope(" ".join(default_scopes))
        except InvalidScope as exc:
            raise InvalidClientMetadata(f"invalid scope: {exc.description}") from None
        if token_format not in ("jwt", "opaque"):
            raise InvalidClientMetadata("token format must be jwt or opaque")
        if client_type not in ("confidential", "public"):
            raise InvalidClientMetadata("client type must be confidential or public")
        if auth_methods is None:
            methods: frozenset[AuthMethod] = (
                frozenset({"none"}) if client_type == "public" else SECRET_AUTH_METHODS
            )
        else:
            methods = frozenset(auth_methods)
        audiences = _resource_uris(resources, "resource")
        introspected = _resource_uris(introspect, "introspection audience")
        secret = None if client_type == "public" else (secret or new_secret())
        now = int(self._clock.now())
        client = check_client(
            Client(
                client_id=client_id,
                secret_hash=None if secret is None else hash_secret(secret),
                name=name,
                grant_types=frozenset(grant_types),
                scopes=frozenset(allowed),
                default_scopes=tuple(defaults),
                token_format=token_format,
                resources=audiences,
                created_at=now,
                updated_at=now,
                introspect=introspected,
                client_type=client_type,
                auth_methods=methods,
                redirect_uris=tuple(redirect_uris),
                post_logout_redirect_uris=tuple(post_logout_redirect_uris),
                require_consent=require_consent,
                require_pkce=require_pkce,
            )
        )
        return NewClient(client=client, secret=secret)

    async def announce(
        self, client_id: str, kind: AuditKind, /, **fields: Unpack[AuditFields]
    ) -> None:
        """After a stored change of the client: every process drops its cached copy (this one
        at once, the others within the sync interval), and the audit trail records ``kind``."""
        await self._changed(client_id, int(self._clock.now()))
        self._audit.record(kind, **(fields | {"client_id": client_id}))

    async def update(self, client_id: str, **changes: Unpack[ClientChanges]) -> Client | None:
        """Change a client's metadata and announce it (see :meth:`revise` for the rules);
        ``None`` if there is no such client."""
        updated = await self.revise(client_id, **changes)
        if updated is None or not await self._storage.clients.update(client=updated):
            return None
        scopes = changes.get("scopes")
        allowed = updated.scopes if scopes is None else parse_scope(" ".join(scopes))
        await self.announce(client_id, "client_updated", scope=" ".join(allowed))
        return updated

    async def revise(
        self,
        client_id: str,
        *,
        name: str | None = None,
        scopes: Iterable[str] | None = None,
        default_scopes: Iterable[str] | None = None,
        redirect_uris: Iterable[str] | None = None,
        post_logout_redirect_uris: Iterable[str] | None = None,
        require_consent: bool | None = None,
        grant_types: Iterable[str] | None = None,
        auth_methods: Iterable[AuthMethod] | None = None,
    ) -> Client | None:
        """The client with changed metadata (``None`` leaves a field as it is), checked but
        not stored; ``None`` if there is no such client. New ``scopes`` without
        ``default_scopes`` make every allowed scope a default, as at creation. The result
        obeys the rules of :func:`check_client` (so ``auth_methods`` cannot turn a public
        client into a confidential one or back: the secret would be missing or left over)."""
        current = await self._storage.clients.get(client_id=client_id)
        if current is None:
            return None
        try:
            allowed = current.scopes if scopes is None else frozenset(parse_scope(" ".join(scopes)))
            if ADMIN_SCOPE in allowed and ADMIN_SCOPE not in current.scopes:
                raise InvalidClientMetadata(
                    "the admin scope is given only at creation (clients create --admin)"
                )
            if default_scopes is not None:
                defaults = parse_scope(" ".join(default_scopes))
            elif scopes is not None:
                defaults = parse_scope(" ".join(scopes))
            else:
                defaults = current.default_scopes
        except InvalidScope as exc:
            raise InvalidClientMetadata(f"invalid scope: {exc.description}") from None
        now = int(self._clock.now())
        changes: dict[str, object] = {
            "scopes": frozenset(allowed),
            "default_scopes": tuple(defaults),
            "updated_at": max(now, current.updated_at),
        }
        if name is not None:
            changes["name"] = name
        if redirect_uris is not None:
            changes["redirect_uris"] = tuple(redirect_uris)
        if post_logout_redirect_uris is not None:
            changes["post_logout_redirect_uris"] = tuple(post_logout_redirect_uris)
        if require_consent is not None:
            changes["require_consent"] = require_consent
        if grant_types is not None:
            changes["grant_types"] = frozenset(grant_types)
        if auth_methods is not None:
            changes["auth_methods"] = frozenset(auth_methods)
        return check_client(replace(current, **changes))  # type: ignore[arg-type]

    async def rotate_secret(self, client_id: str) -> NewClient | None:
        """Replace the secret; the old one stops working everywhere within the sync interval.
        A public client has no secret to replace (:class:`InvalidClientMetadata`)."""
        secret = new_secret()
        secret_hash = hash_secret(secret)
        now = int(self._clock.now())
        client = await self._storage.clients.get(client_id=client_id)
        if client is None:
            return None
        if client.client_type == "public":
            raise InvalidClientMetadata("a public client has no secret to rotate")
        if not await self._storage.clients.set_secret_hash(
            client_id=client_id, secret_hash=secret_hash, now=now
        ):
            return None
        await self._changed(client_id, now)
        self._audit.record("client_secret_rotated", client_id=client_id)
        updated = replace(client, secret_hash=secret_hash, updated_at=now)
        return NewClient(client=updated, secret=secret)

    async def delete(self, client_id: str, /, **fields: Unpack[AuditFields]) -> bool:
        """Delete the client (and its dynamic registration); every token issued to it so far
        stops working, here at once and everywhere within the sync interval (one transaction
        with the deletion). ``fields`` go into the ``client_deleted`` audit event."""
        now = int(self._clock.now())
        deleted = await self._storage.clients.delete(
            client_id=client_id, revocation=self._revocation(client_id, now)
        )
        if deleted:
            self._tokens_revoked(client_id, now)
            await self._changed(client_id, now)
            self._audit.record("client_deleted", **(fields | {"client_id": client_id}))
        return deleted

    async def revoke_tokens(self, client_id: str) -> bool:
        """Void every access token (JWT and opaque) issued to a live client up to this second;
        ``False`` if there is no such client. Tokens it gets afterwards work as usual."""
        now = int(self._clock.now())
        if await self._storage.clients.get(client_id=client_id) is None:
            return False
        await self._storage.revocations.revoke_client(revocation=self._revocation(client_id, now))
        self._tokens_revoked(client_id, now)
        self._audit.record("client_tokens_revoked", client_id=client_id)
        return True

    def _revocation(self, client_id: str, now: int) -> ClientRevocation:
        return ClientRevocation(
            client_id=client_id, revoked_at=now, expires_at=now + self._max_token_age
        )

    def _tokens_revoked(self, client_id: str, now: int) -> None:
        if self._revoked_clients is not None:  # this process at once; others through the feed
            self._revoked_clients.add(client_id, now)

    async def _changed(self, client_id: str, now: int) -> None:
        await self._storage.changes.publish(kind=CLIENT_CHANGE, key=client_id, now=now)
        if self._directory is not None:
            self._directory.invalidate(client_id)


def check_client(client: Client) -> Client:
    """Return ``client`` if its registration is consistent, else raise
    :class:`InvalidClientMetadata` naming the first broken rule:

    - grant types among :data:`SUPPORTED_GRANT_TYPES`; a public client only those of
      :data:`PUBLIC_CLIENT_GRANT_TYPES` (``client_credentials`` needs a secret, OAuth 2.1
      §4.2); ``refresh_token`` only with ``authorization_code``, the grant that issues them;
    - a public client authenticates with ``none`` only, has no secret and always requires
      PKCE (OAuth 2.1 §4.1.2.1, RFC 9700 §2.1.1); a confidential one uses one or both secret
      methods (RFC 6749 §2.3.1);
    - ``authorization_code`` needs at least one redirect URI (OAuth 2.1 §2.3.1), and redirect
      URIs (post-logout ones too) only come with it; each passes
      :func:`~oauth_server.oauth.redirect_uris.check_redirect_uri`, none twice;
    - OpenID Connect scopes (:data:`~oauth_server.oauth.scopes.USER_SCOPES`) need
      ``authorization_code``, and ``offline_access`` needs ``refresh_token``; default scopes
      lie within the allowed ones.
    """
    grants = client.grant_types
    if not grants or not grants <= SUPPORTED_GRANT_TYPES:
        supported = ", ".join(sorted(SUPPORTED_GRANT_TYPES))
        raise InvalidClientMetadata(f"grant types must be among: {supported}")
    code = "authorization_code" in grants
    if "refresh_token" in grants and not code:
        raise InvalidClientMetadata("the refresh_token grant needs the authorization_code grant")
    if client.client_type == "public":
        if not grants <= PUBLIC_CLIENT_GRANT_TYPES:
            raise InvalidClientMetadata(
                "a public client may only use the authorization_code and refresh_token grants "
                "(client_credentials is for confidential clients, OAuth 2.1 §4.2)"
            )
        if client.auth_methods != {"none"} or client.secret_hash is not None:
            raise InvalidClientMetadata("a public client authenticates with none, never a secret")
        if not client.require_pkce:
            raise InvalidClientMetadata("a public client must use PKCE")
    elif not client.auth_methods or not client.auth_methods <= SECRET_AUTH_METHODS:
        raise InvalidClientMetadata(
            "a confidential client authenticates with client_secret_basic and/or "
            "client_secret_post (none is for public clients)"
        )
    for what, uris in (
        ("redirect URI", client.redirect_uris),
        ("post-logout redirect URI", client.post_logout_redirect_uris),
    ):
        if uris and not code:
            raise InvalidClientMetadata(f"a {what} needs the authorization_code grant")
        if len(set(uris)) != len(uris):
            raise InvalidClientMetadata(f"a {what} is given twice")
        for uri in uris:
            try:
                check_redirect_uri(uri)
            except InvalidRedirectUri as exc:
                raise InvalidClientMetadata(f"invalid {what} {uri[:100]!r}: {exc}") from None
    if code and not client.redirect_uris:
        raise InvalidClientMetadata("the authorization_code grant needs a redirect URI")
    user_scopes = sorted(client.scopes & USER_SCOPES)
    if user_scopes and not code:
        raise InvalidClientMetadata(
            f"scope {user_scopes[0]} needs a signed-in user: the authorization_code grant"
        )
    if "offline_access" in client.scopes and "refresh_token" not in grants:
        raise InvalidClientMetadata("scope offline_access needs the refresh_token grant")
    if not set(client.default_scopes) <= client.scopes:
        raise InvalidClientMetadata("default scopes must be among the allowed scopes")
    return client


def _resource_uris(values: Iterable[str], what: str) -> tuple[str, ...]:
    uris = tuple(dict.fromkeys(values))
    for uri in uris:
        parts = urlsplit(uri)
        if not parts.scheme or not parts.netloc or "#" in uri:
            raise InvalidClientMetadata(
                f"{what} {uri!r} must be an absolute URI without a fragment (RFC 8707)"
            )
    return uris
