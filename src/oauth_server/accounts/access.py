"""What a signed-in person sees of their own account, and what they can take back: the apps
that can act for them, their browser sessions, their password.

Framework-free: the account page (``web/routes/account.py``) adapts it, and the admin API is
to call the same methods for a user it names. Every method takes the user's id from the caller
— the page passes the id of the session's user, never one from the form — and every change is
scoped to that user in the storage call itself (``WHERE user_id = …``), so an id taken from
someone else's account (a tampered form) changes nothing.

* **Apps** are the clients the user consented to, and the clients holding live refresh-token
  families for the user (a client that needs no consent never stored one). Revoking one
  deletes the consent — the next sign-in asks again — and revokes every refresh-token family
  of that user and client with every access token recorded against them: JWT ids onto the
  revocation list and opaque tokens marked revoked, each announced on the change feed in the
  same transaction (every instance refuses them within ``OAUTH_SERVER_CACHE_SYNC_INTERVAL``),
  and applied in this process at once through ``voider``. An access token issued without a
  refresh token (an OpenID Connect sign-in without ``offline_access``) is recorded against its
  code only, not against the user: it lives out its lifetime (``OAUTH_SERVER_ACCESS_TOKEN_TTL``).
* **Sessions** are the user's live browser sessions. "Sign out everywhere" ends all of them,
  the current one included; it does not revoke apps' refresh tokens — an app the user signed
  in to keeps the access it was granted until it is revoked here (or the password changes):
  signing out a browser and withdrawing an app are separate decisions, as in the account
  consoles people know.
* **Password change** needs the current password (checked as a login is, with the same one
  answer for every failure) and goes through :meth:`Accounts.set_password`, which ends every
  session of the user — this one too — and revokes every refresh-token family. The account
  page then starts a fresh session for the browser that made the change; the core does not,
  because an administrator's reset must not sign anyone in.
"""

from __future__ import annotations

from dataclasses import dataclass

from oauth_server.accounts.passwords import prepare_new_password
from oauth_server.accounts.users import Accounts, AuthenticationFailed, TokenVoider
from oauth_server.audit import NO_AUDIT, AuditRecorder
from oauth_server.clock import Clock
from oauth_server.storage.models import User
from oauth_server.storage.protocols import (
    BrowserSessionRepository,
    ClientRepository,
    ConsentRepository,
    RefreshTokenRepository,
)

__all__ = [
    "AccessRevoked",
    "AccountAccess",
    "AppAccess",
    "PasswordChanged",
    "SessionInfo",
    "TokenVoider",
    "WrongCurrentPassword",
]


class WrongCurrentPassword(Exception):
    """The current password given for a change is not the user's (or the user cannot sign in
    at all: disabled). One answer for every reason; ``reason`` is for the audit trail."""

    def __init__(self, reason: str) -> None:
        super().__init__("the current password is wrong")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class AppAccess:
    """An app that can act for the user."""

    client_id: str
    name: str
    """The client's display name (its id when it has none, or when it was deleted)."""
    scopes: tuple[str, ...]
    """What the user granted it, sorted (empty when it holds tokens without a stored consent:
    a client registered as needing none)."""
    granted_at: int | None
    """When the consent was last given or widened (``None``: no stored consent)."""
    last_used_at: int | None
    """When it last got a refresh token for the user — its sign-in or its latest refresh
    (``None``: it holds no live refresh token)."""
    refresh_grants: int
    """How many live refresh-token families (one per sign-in) it holds for the user."""


@dataclass(frozen=True, slots=True)
class AccessRevoked:
    """What revoking an app's access did."""

    client_id: str
    consent_deleted: bool
    families: tuple[str, ...]
    refresh_tokens: int
    access_tokens: int

    @property
    def changed(self) -> bool:
        return self.consent_deleted or bool(self.families)


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A live browser session of the user, as the account page shows it."""

    session_id: str
    created_at: int
    last_seen: int
    expires_at: int
    auth_time: int
    user_agent: str
    address: str
    current: bool
    """Whether it is the session of the browser asking."""


@dataclass(frozen=True, slots=True)
class PasswordChanged:
    """The password was changed; every session ended and every refresh family revoked."""

    user_id: str


class AccountAccess:
    """A user's apps, sessions and password, over the storage protocols."""

    def __init__(
        self,
        *,
        accounts: Accounts,
        clients: ClientRepository,
        consents: ConsentRepository,
        refresh_tokens: RefreshTokenRepository,
        sessions: BrowserSessionRepository,
        clock: Clock,
        audit: AuditRecorder = NO_AUDIT,
        voider: TokenVoider | None = None,
    ) -> None:
        self._accounts = accounts
        self._clients = clients
        self._consents = consents
        self._refresh_tokens = refresh_tokens
        self._sessions = sessions
        self._clock = clock
        self._audit = audit
        self._voider = voider

    def _now(self) -> int:
        return int(self._clock.now())

    async def profile(self, *, user_id: str) -> User | None:
        return await self._accounts.get(user_id)

    # --- Apps -------------------------------------------------------------------------------

    async def list_apps(self, *, user_id: str) -> list[AppAccess]:
        """The apps that can act for the user, ordered by name then client id."""
        consents = {c.client_id: c for c in await self._consents.list_for_user(user_id=user_id)}
        grants = {
            g.client_id: g
            for g in await self._refresh_tokens.grants_for_user(user_id=user_id, now=self._now())
        }
        apps: list[AppAccess] = []
        for client_id in sorted(consents.keys() | grants.keys()):
            consent = consents.get(client_id)
            grant = grants.get(client_id)
            client = await self._clients.get(client_id=client_id)
            apps.append(
                AppAccess(
                    client_id=client_id,
                    name=(client.name if client is not None else "") or client_id,
                    scopes=tuple(sorted(consent.scopes)) if consent else (),
                    granted_at=consent.updated_at if consent else None,
                    last_used_at=grant.last_used_at if grant else None,
                    refresh_grants=grant.families if grant else 0,
                )
            )
        apps.sort(key=lambda app: (app.name.casefold(), app.client_id))
        return apps

    async def revoke_app(self, *, user_id: str, client_id: str) -> AccessRevoked:
        """Take the app's access back: delete the consent and revoke every refresh-token family
        of this user and client, with the access tokens recorded against them (RFC 7009 §2.1:
        revoking the grant's refresh token SHOULD also invalidate its access tokens).
        Idempotent: a second call, or an app the user never granted, changes nothing."""
        now = self._now()
        consent_deleted = await self._consents.revoke(user_id=user_id, client_id=client_id)
        revocation = await self._refresh_tokens.revoke_for_user_client(
            user_id=user_id, client_id=client_id, now=now
        )
        if self._voider is not None:
            self._voider.voided(revocation.access_tokens)
        for family_id in revocation.family_ids:
            self._audit.record(
                "refresh_family_revoked",
                user_id=user_id,
                client_id=client_id,
                family_id=family_id,
                reason="user_revoked_app",
            )
        result = AccessRevoked(
            client_id=client_id,
            consent_deleted=consent_deleted,
            families=revocation.family_ids,
            refresh_tokens=revocation.refresh_tokens,
            access_tokens=len(revocation.access_tokens),
        )
        if result.changed:
            self._audit.record(
                "app_access_revoked",
                user_id=user_id,
                client_id=client_id,
                count=len(revocation.family_ids),
            )
        return result

    # --- Sessions ---------------------------------------------------------------------------

    async def list_sessions(
        self, *, user_id: str, current_session_id: str | None = None
    ) -> list[SessionInfo]:
        """The user's live sessions, the current one first, then by last seen."""
        sessions = await self._sessions.list_for_user(user_id=user_id, now=self._now())
        infos = [
            SessionInfo(
                session_id=s.session_id,
                created_at=s.created_at,
                last_seen=s.last_seen,
                expires_at=s.expires_at,
                auth_time=s.auth_time,
                user_agent=s.user_agent,
                address=s.address,
                current=s.session_id == current_session_id,
            )
            for s in sessions
        ]
        infos.sort(key=lambda info: not info.current)  # stable: keeps the last-seen order
        return infos

    async def end_session(self, *, user_id: str, session_id: str) -> bool:
        """End one of the user's sessions; ``False`` when it is not a live session of this
        user (unknown, ended, or another user's: nothing changes)."""
        ended = await self._sessions.end_for_user(
            user_id=user_id, session_id=session_id, now=self._now()
        )
        if ended:
            self._audit.record("session_ended", user_id=user_id, count=1)
        return ended

    async def end_all_sessions(self, *, user_id: str) -> int:
        """ "Sign out everywhere": end every session of the user, the caller's too; how many
        ended. Apps' refresh tokens are not revoked (see the module docstring)."""
        count = await self._sessions.end_all_for_user(user_id=user_id, now=self._now())
        self._audit.record("session_ended", user_id=user_id, count=count, reason="everywhere")
        return count

    # --- Password ---------------------------------------------------------------------------

    async def change_password(
        self, *, user_id: str, current_password: str, new_password: str
    ) -> PasswordChanged:
        """Check ``current_password`` as a login does, then set ``new_password``.

        Raises :class:`~oauth_server.accounts.InvalidPassword` (the policy refuses the new
        one; checked first, so no hash is spent on it) or :class:`WrongCurrentPassword`.
        Success ends every session of the user and revokes every refresh-token family
        (:meth:`Accounts.set_password`)."""
        prepare_new_password(new_password)
        user = await self._accounts.get(user_id)
        if user is None:
            raise WrongCurrentPassword("unknown user")
        try:
            await self._accounts.authenticate(user.username, current_password)
        except AuthenticationFailed as failure:
            raise WrongCurrentPassword(failure.reason) from None
        if not await self._accounts.set_password(user_id, new_password):
            raise WrongCurrentPassword("unknown user")  # deleted in between
        return PasswordChanged(user_id=user_id)
