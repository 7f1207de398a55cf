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

from collections.abc import Iterable, Sequence
from typing import Protocol

from oauth_server.storage.models import (
    AccessTokenRecord,
    AuditQuery,
    AuditRecord,
    AuthorizationCode,
    BrowserSession,
    Change,
    Client,
    ClientRegistration,
    ClientRevocation,
    CodeRedemption,
    Consent,
    FamilyRevocation,
    InitialAccessToken,
    Interaction,
    InteractionLogin,
    IssuedToken,
    RefreshFamily,
    RefreshRotation,
    RefreshTokenRecord,
    Restaurant,
    RestaurantChanges,
    RevokedToken,
    SigningKeyRecord,
    User,
    UserClientGrant,
    UserProfileChanges,
)

__all__ = [
    "AccessTokenRepository",
    "AlreadyExists",
    "AuditRepository",
    "AuthorizationCodeRepository",
    "BrowserSessionRepository",
    "ChangeFeed",
    "ClientRepository",
    "ConsentRepository",
    "InteractionRepository",
    "MetaRepository",
    "RefreshTokenRepository",
    "RegistrationRepository",
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

    async def list(
        self, *, limit: int | None = None, after: str | None = None, search: str | None = None
    ) -> list[Client]:
        """Clients ordered by id: up to ``limit`` (all without), after the id ``after``, and
        with ``search`` only those whose id or name contains it (case-insensitive; ``%``,
        ``_`` and ``\\`` are plain characters)."""
        ...

    async def delete(self, *, client_id: str, revocation: ClientRevocation) -> bool:
        """Delete the client and, in the same transaction, record ``revocation`` (its tokens
        issued so far become void, as by :meth:`RevocationRepository.revoke_client`);
        ``True`` only if this call deleted it. A deleted client's tokens never outlive it, and
        its dynamic registration (:class:`RegistrationRepository`), if any, goes with it."""
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

    async def query(self, *, query: AuditQuery, limit: int) -> list[AuditRecord]:
        """Up to ``limit`` records matching ``query``, newest first (by ``at_ms``, then chain
        and sequence, descending), strictly before ``query.before`` when given: the key of the
        last record of the previous page. The kind and the time range use indexes; ``client_id``
        and ``user_id`` match the event's field of that name exactly."""
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
    async def list(
        self, *, limit: int, after: str | None = None, search: str | None = None
    ) -> list[User]:
        """Up to ``limit`` users ordered by username, starting after the username ``after``;
        with ``search``, only those whose username, name or email contains it
        (case-insensitive, every character plain)."""
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

    async def set_admin(self, *, user_id: str, is_admin: bool) -> bool:
        """Grant or withdraw the admin flag; ``True`` only if this call changed it."""
        ...

    async def delete(self, *, user_id: str) -> bool: ...


# --- Sign-in ----------------------------------------------------------------------------------
# Every handle held outside the server (code, refresh token, session cookie, interaction id) is
# a SplitToken (oauth_server.crypto; codes and refresh tokens in the checksummed format of
# oauth_server.oauth.tokens.format, which refuses forgeries before storage): the methods take its
# ``selector`` and the SHA-256 of its secret part, which they compare in constant time. A wrong
# verifier is answered exactly like an unknown selector, and changes nothing.


class AuthorizationCodeRepository(Protocol):
    """Authorization codes (RFC 6749 §4.1.2): short-lived, single use."""

    async def add(self, *, code: AuthorizationCode) -> None: ...

    async def consume(
        self, *, selector: bytes, verifier_hash: bytes, now: int
    ) -> CodeRedemption | None:
        """Redeem the code. ``consumed`` goes to exactly one caller, across processes and
        machines (a conditional ``UPDATE … WHERE used_at IS NULL AND expires_at > now`` and its
        row count). A later call gets ``replayed`` with the tokens :meth:`record_issued`
        recorded so far, and marks the code replayed. ``None``: unknown, wrong verifier, or
        expired before anyone redeemed it. It revokes nothing itself: the grant decides
        (OAuth 2.1 §7.5.3: an otherwise invalid replay revokes nothing) and calls
        :meth:`revoke_issued`."""
        ...

    async def record_issued(
        self,
        *,
        selector: bytes,
        tokens: Sequence[IssuedToken],
        refresh_family_id: str | None,
        now: int,
    ) -> bool:
        """Remember the access tokens (and the refresh family) issued from the code; the
        tokens count for the family too, so :meth:`RefreshTokenRepository.revoke_family`
        voids them. ``False`` when a replay was seen before this committed: the caller must
        then :meth:`revoke_issued` what it just issued (a replay can never slip between the
        redemption and this record unnoticed)."""
        ...

    async def revoke_issued(self, *, selector: bytes, now: int) -> tuple[IssuedToken, ...]:
        """Void every access token recorded for the code and revoke its refresh family (as
        :meth:`RefreshTokenRepository.revoke_family`), announcing each on the change feed in
        the same transaction; returns the access tokens. Idempotent."""
        ...

    async def purge_expired(self, *, before: int, limit: int) -> int:
        """Delete up to ``limit`` codes (used or not) that expired before ``before``."""
        ...


class RefreshTokenRepository(Protocol):
    """Refresh tokens in families (one per grant), rotated on every use (RFC 9700 §4.14.2)."""

    async def create_family(self, *, family: RefreshFamily, token: RefreshTokenRecord) -> None:
        """Store a new family and its first token (its ``expires_at`` capped at the family's)."""
        ...

    async def get(self, *, selector: bytes) -> RefreshTokenRecord | None: ...
    async def get_family(self, *, family_id: str) -> RefreshFamily | None: ...

    async def rotate(
        self,
        *,
        selector: bytes,
        verifier_hash: bytes,
        successor: RefreshTokenRecord,
        access_tokens: Sequence[IssuedToken] = (),
        now: int,
        grace: int = 0,
    ) -> RefreshRotation | None:
        """Consume the presented token and store ``successor`` (its family, client, user and
        parent taken from the presented token; its ``expires_at`` capped at the family's) and
        ``access_tokens`` against the family, in one transaction. A compare-and-set: of any
        number of concurrent calls, in any number of processes, exactly one gets ``rotated``.
        An already rotated token gets ``reused`` (and nothing changes: the grant revokes the
        family) — except once, within ``grace`` seconds of its rotation and while its
        successor is unused, when it is rotated again and that successor revoked. ``None``:
        unknown or wrong verifier. See :class:`RefreshRotation`."""
        ...

    async def revoke_family(self, *, family_id: str, now: int) -> FamilyRevocation:
        """Revoke the family and every refresh token of it, and void every access token
        recorded against it (JWT ids to the revocation list, opaque tokens marked revoked),
        each announced on the change feed in the same transaction. Idempotent."""
        ...

    async def revoke_for_user(self, *, user_id: str, now: int) -> FamilyRevocation:
        """:meth:`revoke_family` for every live family of the user (password change,
        disabled), in one transaction."""
        ...

    async def revoke_for_user_client(
        self, *, user_id: str, client_id: str, now: int
    ) -> FamilyRevocation:
        """:meth:`revoke_family` for every live family of that user and that client (the user
        takes an app's access back), in one transaction; other clients' and other users'
        families are untouched."""
        ...

    async def grants_for_user(self, *, user_id: str, now: int) -> list[UserClientGrant]:
        """Per client, the user's live families (not revoked, ``expires_at > now``), ordered by
        client id; clients with none are left out."""
        ...

    async def revoke_for_session(
        self, *, session_id: str, now: int, keep_scope: str | None = None
    ) -> FamilyRevocation:
        """:meth:`revoke_family` for every live family that continues the browser session
        ``session_id`` (its live token carries that session), except the families whose live
        token's scope has ``keep_scope`` (logout keeps ``offline_access`` grants), in one
        transaction. An empty ``session_id`` revokes nothing."""
        ...

    async def purge_expired(self, *, before: int, limit: int) -> int:
        """Delete up to ``limit`` refresh tokens whose idle expiry is before ``before``."""
        ...

    async def purge_expired_families(self, *, before: int, limit: int) -> int:
        """Delete up to ``limit`` families past their absolute expiry before ``before`` (their
        tokens expire no later, so they went in :meth:`purge_expired`)."""
        ...

    async def purge_expired_issued(self, *, before: int, limit: int) -> int:
        """Delete up to ``limit`` records of issued access tokens that expired before
        ``before`` (nothing is left to void)."""
        ...


class BrowserSessionRepository(Protocol):
    """Signed-in browsers; in the database, so they survive a restart and span instances."""

    async def create(self, *, session: BrowserSession) -> None: ...
    async def get(
        self, *, selector: bytes, verifier_hash: bytes, now: int
    ) -> BrowserSession | None:
        """The session the cookie names, if it has neither ended nor expired at ``now``."""
        ...

    async def touch(self, *, session_id: str, now: int) -> bool:
        """Set ``last_seen``; ``True`` only if the session is still live."""
        ...

    async def end(self, *, session_id: str, now: int) -> bool:
        """``True`` only if this call ended it (of concurrent calls, one wins)."""
        ...

    async def end_all_for_user(self, *, user_id: str, now: int) -> int:
        """End every live session of the user; how many this call ended."""
        ...

    async def end_for_user(self, *, user_id: str, session_id: str, now: int) -> bool:
        """End the session only if it is that user's and still live: ``True`` only if this
        call ended it. Another user's session id changes nothing and answers ``False``, as an
        unknown one does."""
        ...

    async def list_for_user(self, *, user_id: str, now: int) -> list[BrowserSession]:
        """The user's live sessions (neither ended nor expired at ``now``), most recently seen
        first."""
        ...

    async def purge_expired(self, *, before: int, limit: int) -> int:
        """Delete up to ``limit`` sessions that expired or ended before ``before``."""
        ...


class ConsentRepository(Protocol):
    """The scopes each user granted each client, so only new scopes are asked for."""

    async def grant(
        self, *, user_id: str, client_id: str, scopes: Iterable[str], now: int
    ) -> Consent:
        """Add ``scopes`` to the granted set (a union; concurrent grants lose no scope)."""
        ...

    async def get(self, *, user_id: str, client_id: str) -> Consent | None: ...
    async def revoke(self, *, user_id: str, client_id: str) -> bool:
        """Forget the consent; ``True`` only if this call deleted it."""
        ...

    async def list_for_user(self, *, user_id: str) -> list[Consent]:
        """The user's consents, ordered by client id."""
        ...


class InteractionRepository(Protocol):
    """Stored authorize requests that the login and consent pages resume. ``get`` and
    ``complete`` need the id's verifier and the browser-binding hash: an id used from another
    browser is unknown."""

    async def create(self, *, interaction: Interaction) -> None: ...
    async def get(
        self, *, selector: bytes, verifier_hash: bytes, browser_hash: bytes, now: int
    ) -> Interaction | None:
        """The interaction, if it exists, matches, is not completed and not expired."""
        ...

    async def update(
        self,
        *,
        selector: bytes,
        now: int,
        login: InteractionLogin | None = None,
        consented: Iterable[str] | None = None,
    ) -> Interaction | None:
        """Record the login and/or consent result (for an interaction the caller resumed with
        :meth:`get`, which checked the id and the browser); the updated interaction, ``None``
        if it is gone, completed or expired."""
        ...

    async def complete(
        self, *, selector: bytes, verifier_hash: bytes, browser_hash: bytes, now: int
    ) -> Interaction | None:
        """Finish it: single use, atomic in the database — exactly one of concurrent callers
        gets the interaction, the others ``None``."""
        ...

    async def delete(self, *, selector: bytes) -> bool: ...
    async def purge_expired(self, *, before: int, limit: int) -> int:
        """Delete up to ``limit`` interactions that expired or completed before ``before``."""
        ...


class RegistrationRepository(Protocol):
    """Dynamic client registration (RFC 7591, RFC 7592): initial access tokens, and what is
    kept about each dynamically registered client beside its :class:`ClientRepository` row.
    Secrets arrive as SHA-256 hashes only."""

    async def add_initial_token(self, *, token: InitialAccessToken) -> None: ...
    async def get_initial_token(self, *, selector: bytes) -> InitialAccessToken | None: ...
    async def list_initial_tokens(self) -> list[InitialAccessToken]:
        """Every initial access token, newest first."""
        ...

    async def revoke_initial_token(self, *, selector: bytes, now: int) -> bool:
        """``True`` only if this call revoked it (a revoked token stays listed)."""
        ...

    async def register(self, *, client: Client, registration: ClientRegistration, now: int) -> bool:
        """Store a dynamically registered client and its registration in one transaction.
        With ``registration.initial_token``, first count one use of that token — only while
        it is unrevoked, unexpired at ``now`` and below its ``max_clients``, by a conditional
        ``UPDATE`` and its row count — and store nothing, returning ``False``, when it is not:
        of any number of concurrent registrations through one token, in any number of
        processes, at most ``max_clients`` succeed. Raise :class:`AlreadyExists` (nothing
        stored, no use counted) when the client id is taken."""
        ...

    async def get(self, *, client_id: str) -> ClientRegistration | None: ...
    async def update(self, *, client: Client, metadata: str, now: int) -> bool:
        """Replace the client's metadata (as :meth:`ClientRepository.update`) and the
        registration's ``metadata`` and ``updated_at``, in one transaction; ``False`` (nothing
        changed) if the client has no registration."""
        ...


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
    def codes(self) -> AuthorizationCodeRepository: ...
    @property
    def refresh_tokens(self) -> RefreshTokenRepository: ...
    @property
    def sessions(self) -> BrowserSessionRepository: ...
    @property
    def consents(self) -> ConsentRepository: ...
    @property
    def interactions(self) -> InteractionRepository: ...
    @property
    def registrations(self) -> RegistrationRepository: ...

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

    def pool_usage(self) -> tuple[int, int]:
        """This process's connections: checked out now, and the pool's size (metrics)."""
        ...

    async def close(self) -> None: ...
