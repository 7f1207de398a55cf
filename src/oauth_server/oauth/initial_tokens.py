"""Initial access tokens (RFC 7591 §1.2, §3): the bearer credentials with which software may
register clients when registration is not open.

An operator creates one (``oauth-server registration create-token``); its value is shown
once. It is a split token (:func:`~oauth_server.crypto.new_split_token`): the selector — its
public id, in hex — finds the row; the secret part is stored only as its SHA-256 and compared
in constant time, an unknown selector against a dummy hash, so a wrong secret, an unknown id
and a malformed value are told apart by nothing. It expires, can be revoked, and registers at
most its ``max_clients`` clients: the count is taken in the registration's own transaction
(:meth:`~oauth_server.storage.protocols.RegistrationRepository.register`), so concurrent
registrations cannot overrun it.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from oauth_server.audit import NO_AUDIT, AuditRecorder
from oauth_server.clock import Clock
from oauth_server.crypto import SELECTOR_BYTES, new_split_token, parse_split_token
from oauth_server.storage.models import InitialAccessToken
from oauth_server.storage.protocols import RegistrationRepository

__all__ = [
    "MAX_TOKEN_CLIENTS",
    "MAX_TOKEN_LIFETIME",
    "InitialAccessTokens",
    "NewInitialAccessToken",
]

MAX_TOKEN_LIFETIME = 366 * 86_400
MAX_TOKEN_CLIENTS = 100_000
_DUMMY_HASH = hashlib.sha256(b"no such initial access token").digest()


@dataclass(frozen=True, slots=True)
class NewInitialAccessToken:
    """A created token and its value, which is shown this once and never stored."""

    token: InitialAccessToken
    value: str


class InitialAccessTokens:
    def __init__(
        self, repository: RegistrationRepository, *, clock: Clock, audit: AuditRecorder = NO_AUDIT
    ) -> None:
        self._repository = repository
        self._clock = clock
        self._audit = audit

    async def create(
        self, *, max_clients: int, expires_in: int, description: str = ""
    ) -> NewInitialAccessToken:
        if not 1 <= max_clients <= MAX_TOKEN_CLIENTS:
            raise ValueError(f"max clients must be 1 to {MAX_TOKEN_CLIENTS}")
        if not 60 <= expires_in <= MAX_TOKEN_LIFETIME:
            raise ValueError(f"the lifetime must be 60 s to {MAX_TOKEN_LIFETIME // 86_400} days")
        now = self._clock.now()
        split = new_split_token(now)
        token = InitialAccessToken(
            selector=split.selector,
            verifier_hash=split.verifier_hash,
            description=description[:255],
            max_clients=max_clients,
            created_at=int(now),
            expires_at=int(now) + expires_in,
        )
        await self._repository.add_initial_token(token=token)
        self._audit.record(
            "initial_access_token_created", token_id=token.token_id, count=max_clients
        )
        return NewInitialAccessToken(token=token, value=split.value)

    async def list(self) -> list[InitialAccessToken]:
        return await self._repository.list_initial_tokens()

    async def revoke(self, token_id: str) -> bool:
        """Revoke by public id (the hex selector); ``False`` if unknown or already revoked.
        Clients registered with it stay registered."""
        try:
            selector = bytes.fromhex(token_id)
        except ValueError:
            return False
        if len(selector) != SELECTOR_BYTES:
            return False
        revoked = await self._repository.revoke_initial_token(
            selector=selector, now=int(self._clock.now())
        )
        if revoked:
            self._audit.record("initial_access_token_revoked", token_id=token_id)
        return revoked

    async def find(self, value: str) -> InitialAccessToken | None:
        """The token ``value`` names, if its secret matches and it can still register a client
        (unrevoked, unexpired, not used up); else ``None``, whatever the reason."""
        parsed = parse_split_token(value)
        if parsed is None:
            return None
        selector, verifier_hash = parsed
        token = await self._repository.get_initial_token(selector=selector)
        stored = token.verifier_hash if token is not None else _DUMMY_HASH
        if not hmac.compare_digest(stored, verifier_hash) or token is None:
            return None
        live = token.revoked_at is None and token.expires_at > self._clock.now()
        return token if live and token.clients_registered < token.max_clients else None
