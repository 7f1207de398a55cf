"""What the two user grants (authorization_code, refresh_token) share: the stores and
lifetimes they work with, the refresh-token issuance rule, and the revocation of what a code
or a family issued (store first, then this process at once; the change feed tells the rest).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from oauth_server.audit import NO_AUDIT, AuditRecorder
from oauth_server.clock import Clock
from oauth_server.crypto import SplitToken
from oauth_server.errors import InvalidGrant
from oauth_server.oauth.tokens.format import TokenCodec
from oauth_server.oauth.tokens.issue import AccessToken
from oauth_server.oauth.tokens.voided import IssuedTokenVoider
from oauth_server.observer import NO_OBSERVER, Observer
from oauth_server.storage.models import Client, IssuedToken, RefreshTokenRecord, User
from oauth_server.storage.protocols import Storage

__all__ = ["SignInGrants", "issues_refresh_token"]


def issues_refresh_token(client: Client, scope: tuple[str, ...]) -> bool:
    """The refresh-token rule (the README states it). A client registered for the
    ``refresh_token`` grant gets one with every token response of a user grant — except for an
    OpenID Connect request (scope ``openid``), which gets one only when ``offline_access`` was
    granted (OpenID Connect Core §11: offline access is what the user consents to)."""
    if "refresh_token" not in client.grant_types:
        return False
    return "openid" not in scope or "offline_access" in scope


@dataclass(frozen=True, slots=True)
class SignInGrants:
    """The dependencies of the user grants."""

    storage: Storage
    clock: Clock
    voider: IssuedTokenVoider
    default_resource: str
    codec: TokenCodec
    """Mints refresh tokens and parses refresh tokens and authorization codes."""
    refresh_idle_ttl: int = 14 * 86_400
    refresh_max_ttl: int = 90 * 86_400
    refresh_reuse_grace: int = 0
    audit: AuditRecorder = NO_AUDIT
    observer: Observer = NO_OBSERVER

    def now(self) -> int:
        return int(self.clock.now())

    async def active_user(self, user_id: str) -> User:
        """The user, unless deleted or disabled (a disabled user gets no tokens anywhere)."""
        user = await self.storage.users.get(user_id=user_id)
        if user is None or user.disabled:
            raise InvalidGrant("the user of this grant is disabled or no longer exists")
        return user

    def audience(self, resource: str) -> tuple[str, ...]:
        return tuple(resource.split()) or (self.default_resource,)

    @staticmethod
    def issued(access: AccessToken, client: Client, now: int) -> IssuedToken:
        # `now` is read after the token was issued, so the recorded expiry is never earlier.
        return IssuedToken(
            token_id=access.token_id,
            token_format=access.token_format,
            client_id=client.client_id,
            expires_at=now + access.expires_in,
        )

    def new_refresh_token(
        self,
        *,
        family_id: str,
        client_id: str,
        user_id: str,
        scope: str,
        resource: str,
        now: int,
        auth_time: int = 0,
        session_id: str = "",
    ) -> tuple[SplitToken, RefreshTokenRecord]:
        """A new refresh token: opaque, checksummed, a 256-bit secret stored only as its
        SHA-256."""
        token = self.codec.mint("refresh_token", self.clock.now())
        record = RefreshTokenRecord(
            selector=token.selector,
            verifier_hash=token.verifier_hash,
            family_id=family_id,
            client_id=client_id,
            user_id=user_id,
            scope=scope,
            resource=resource,
            issued_at=now,
            expires_at=now + self.refresh_idle_ttl,
            auth_time=auth_time,
            session_id=session_id,
        )
        return token, record

    @staticmethod
    def new_family_id() -> str:
        return uuid.uuid4().hex

    async def revoke_family(self, family_id: str, *, client_id: str, reason: str) -> None:
        revocation = await self.storage.refresh_tokens.revoke_family(
            family_id=family_id, now=self.now()
        )
        self.voider.voided(revocation.access_tokens)
        self.audit.record(
            "refresh_family_revoked",
            client_id=client_id,
            family_id=family_id,
            reason=reason,
            count=len(revocation.access_tokens),
        )

    async def revoke_code_issued(self, selector: bytes, *, client_id: str, reason: str) -> None:
        voided = await self.storage.codes.revoke_issued(selector=selector, now=self.now())
        self.voider.voided(voided)
        self.audit.record(
            "authorization_code_replayed",
            client_id=client_id,
            token_id=selector.hex(),
            reason=reason,
            count=len(voided),
        )
