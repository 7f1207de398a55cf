"""Storage as small async protocols, one per role. Keyword-only, frozen records out, no HTTP in.

One SQL implementation serves SQLite and PostgreSQL (:mod:`oauth_server.storage.sql`); the
contract suite in ``tests/storage`` runs against every backend.

The ``purge_*`` methods delete at most ``limit`` rows in one short transaction and return how
many they deleted; :mod:`oauth_server.maintenance` calls them until a batch comes back short.
They are safe to run from several processes at once: a row is deleted once, by whichever
gets it, and on PostgreSQL concurrent purgers skip the rows another has locked instead of
waiting for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from oauth_server.storage.models import (
    AccessTokenRecord,
    AuditRecord,
    Change,
    Client,
    ClientRevocation,
    Restaurant,
    RestaurantChanges,
    RevokedToken,
    SigningKeyRecord,
    User,
    UserProfileChanges,
)

__all__ = [
    "AccessTokenRepository",
    "AlreadyExists",
    "AuditRepository",
    "ChangeFeed",
    "ClientRepository",
    "MetaRepository",
    "RestaurantRepository",
    "RevocationRepository",
    "SigningKeyRepository",
    "Storage",
    "UserRepository",
]


class AlreadyExists(Exception):
    """A record with that identifier exists already."""


class ClientRepository(Protocol):
    async def get(self, *, client_id: str) -> Client | None: ...
    async def add(self, *, client: Client) -> None:
        """Insert; raise :class:`AlreadyExists` when the id is taken."""
        ...

    async def list(self) -> list[Client]: ...
    async def delete(self, *, client_id: str, revocation: ClientRevocation) -> bool:
        """Delete the client and, in the same transaction, record ``revocation`` (its tokens
        issued so far become void, as by :meth:`RevocationRepository.revoke_client`);
        ``True`` only if this call deleted it. A deleted client's tokens never outlive it."""
        ...

    async def set_secret_hash(self, *, client_id: str, secret_hash: str, now: int) -> bool: ...
    async def update(self, *, client: Client) -> bool:
        """Replace the client's metadata (every field but its id, secret hash and
        ``created_at``); ``False`` if there is no such client. The last writer wins."""
        ...


class AccessTokenRepository(Protocol):
    async def add(self, *, token: AccessTokenRecord) -> None:
        """Durably store the token before returning (the caller acknowledges it next)."""
        ...

    async def get(self, *, selector: bytes) -> AccessTokenRecord | None: ...
    async def revoke(self, *, selector: bytes, now: int) -> bool:
        """Mark revoked; ``True`` only if this call changed it from active to revoked. A
        revocation announces :data:`TOKEN_CHANGE` (hex selector) in the same transaction."""
        ...

    async def purge_expired(self, *, before: int, limit: int) -> int:
        """Delete up to ``limit`` tokens (revoked or not) that expired before ``before``."""
        ...


class SigningKeyRepository(Protocol):
    async def list(self) -> list[SigningKeyRecord]:
        """Every key not yet purged, removed ones included, oldest generation first."""
        ...

    async def add(self, *, key: SigningKeyRecord) -> bool:
        """Insert; ``False`` when a key of that generation exists (another instance won)."""
        ...

    async def remove(self, *, kid: str, now: int) -> bool:
        """Withdraw a key at once (compromise): it stops signing and leaves the JWKS. Its
        encrypted private key is erased in the same write, so clearing ``removed_at`` later
        cannot bring it back."""
        ...

    async def replace_private_key(self, *, kid: str, old: bytes, new: bytes) -> bool:
        """Store ``new`` as the key's encrypted private key if it is still ``old`` (a
        re-encryption); ``True`` if this call changed it."""
        ...

    async def delete(self, *, kid: str) -> bool:
        """Forget a key for good (its verification window has ended); ``True`` if this call
        deleted it. Which keys may go is the key manager's decision, not the repository's."""
        ...


class RevocationRepository(Protocol):
    async def add(self, *, token: RevokedToken) -> bool:
        """Record a revoked JWT and announce its ``jti`` on the change feed (kind
        :data:`JTI_CHANGE`) in the same transaction; ``False`` when already recorded."""
        ...

    async def active(self, *, now: int) -> list[RevokedToken]:
        """Revocations of tokens that have not expired yet."""
        ...

    async def purge_expired(self, *, before: int, limit: int) -> int:
        """Delete up to ``limit`` revocations of tokens that expired before ``before``."""
        ...

    async def revoke_client(self, *, revocation: ClientRevocation) -> None:
        """Void every token of the client issued at or before ``revocation.revoked_at`` (a
        stored later cutoff is kept) and announce :data:`CLIENT_REVOCATION_CHANGE` in the same
        transaction."""
        ...

    async def active_clients(self, *, now: int) -> list[ClientRevocation]:
        """Client-wide revocations that may still cover a token (``expires_at > now``)."""
        ...

    async def purge_expired_clients(self, *, before: int, limit: int) -> int:
        """Delete up to ``limit`` client-wide revocations whose ``expires_at`` is before
        ``before``."""
        ...


class RestaurantRepository(Protocol):
    """Every write also announces :data:`RESTAURANTS_CHANGE` in its own transaction."""

    async def list(self, *, limit: int, after: str | None = None) -> list[Restaurant]:
        """Up to ``limit`` restaurants ordered by id, starting after ``after``."""
        ...

    async def get(self, *, restaurant_id: str) -> Restaurant | None: ...
    async def add(self, *, restaurant: Restaurant) -> None: ...
    async def add_many(self, *, restaurants: Sequence[Restaurant]) -> int:
        """Insert or replace by id; returns the number written."""
        ...

    async def update(
        self, *, restaurant_id: str, changes: RestaurantChanges, now: int
    ) -> Restaurant | None: ...
    async def delete(self, *, restaurant_id: str, now: int) -> bool: ...
    async def count(self) -> int: ...


class MetaRepository(Protocol):
    """Small server-wide key/value facts (for example, that the demo data was seeded)."""

    async def get(self, *, key: str) -> str | None: ...
    async def set(self, *, key: str, value: str) -> None: ...


class ChangeFeed(Protocol):
    """An append-only feed of cache invalidations shared by all processes."""

    async def publish(self, *, kind: str, key: str, now: int) -> None: ...
    async def read(self, *, after: int, limit: int) -> list[Change]: ...
    async def last_id(self) -> int: ...
    async def purge_older(self, *, before: int, limit: int) -> int:
        """Delete up to ``limit`` changes created before ``before``, never the newest one
        (a process starting up takes its id as the point to read from)."""
        ...


class AuditRepository(Protocol):
    """The append-only audit trail. Nothing here updates or deletes a record."""

    async def append(self, *, records: Sequence[AuditRecord]) -> None:
        """Insert the records in one transaction. A record whose ``(chain_id, seq)`` is stored
        already is skipped, so a batch whose commit was in doubt can simply be written again."""
        ...

    async def scan(self, *, after: tuple[str, int] | None, limit: int) -> list[AuditRecord]:
        """Up to ``limit`` records ordered by chain then sequence, after ``(chain_id, seq)``."""
        ...

    async def recent(self, *, limit: int) -> list[AuditRecord]:
        """The ``limit`` most recent records, newest first."""
        ...


class UserRepository(Protocol):
    """People who sign in. Usernames arrive normalized (:mod:`oauth_server.accounts` validates
    and lower-cases them before any call here); the repository enforces their uniqueness."""

    async def add(self, *, user: User) -> None:
        """Insert; raise :class:`AlreadyExists` when the username (or the id) is taken — of
        concurrent adds of one username exactly one succeeds."""
        ...

    async def get(self, *, user_id: str) -> User | None: ...
    async def get_by_username(self, *, username: str) -> User | None: ...
    async def list(self, *, limit: int, after: str | None = None) -> list[User]:
        """Up to ``limit`` users ordered by username, starting after the username ``after``."""
        ...

    async def update_profile(
        self, *, user_id: str, changes: UserProfileChanges, now: int
    ) -> User | None:
        """Apply the changes and set ``updated_at``; the updated user, ``None`` if unknown."""
        ...

    async def set_password_hash(
        self, *, user_id: str, password_hash: str, replaces: str | None = None
    ) -> bool:
        """Store a new hash; ``True`` only if this call changed it. With ``replaces``, only while
        the stored hash is still that one: a rehash after a login must not undo a password
        change that committed in between."""
        ...

    async def set_disabled(self, *, user_id: str, disabled: bool) -> bool:
        """``True`` only if this call changed the flag (of concurrent calls, one wins)."""
        ...

    async def delete(self, *, user_id: str) -> bool: ...


class Storage(Protocol):
    @property
    def clients(self) -> ClientRepository: ...
    @property
    def tokens(self) -> AccessTokenRepository: ...
    @property
    def restaurants(self) -> RestaurantRepository: ...
    @property
    def keys(self) -> SigningKeyRepository: ...
    @property
    def revocations(self) -> RevocationRepository: ...
    @property
    def meta(self) -> MetaRepository: ...
    @property
    def changes(self) -> ChangeFeed: ...
    @property
    def audit(self) -> AuditRepository: ...
    @property
    def users(self) -> UserRepository: ...

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``."""
        ...

    async def migrate(self) -> None:
        """Bring the schema to the latest revision (idempotent, safe with many instances)."""
        ...

    async def schema_is_current(self) -> bool:
        """Whether the schema is at the latest revision (reads only; ``False`` when empty)."""
        ...

    async def ping(self) -> None:
        """Raise if the database cannot be reached."""
        ...

    async def close(self) -> None: ...
