"""Token issuance: a grant decides an :class:`Authorization`; :class:`TokenService` turns it into
a :class:`TokenSet` — the access token (by the client's token format: JWT or opaque) and, for the
grants that have them, a refresh token and an ID token (``None`` for client_credentials)."""

from __future__ import annotations

import base64
import itertools
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol

import orjson

from oauth_server.clock import Clock
from oauth_server.oauth.keys import KeyRing
from oauth_server.oauth.scopes import format_scope
from oauth_server.oauth.tokens.format import TokenCodec
from oauth_server.storage.models import AccessTokenRecord, Client, TokenFormat, User
from oauth_server.storage.protocols import AccessTokenRepository

__all__ = [
    "AccessToken",
    "AccessTokenIssuer",
    "Authorization",
    "IdTokenIssuer",
    "JwtAccessTokenIssuer",
    "OpaqueTokenIssuer",
    "TokenService",
    "TokenSet",
    "UserContext",
]


@dataclass(frozen=True, slots=True)
class Authorization:
    """What a grant decided: which client gets tokens, for whom, with which scope and
    audience. A decision, not yet a token."""

    client: Client
    subject: str
    scope: tuple[str, ...]
    audience: tuple[str, ...] = ()
    user: UserContext | None = None
    """Set by the grants that act for a person (authorization_code, refresh_token): what an
    ID token issuer needs besides the subject. ``None`` for client_credentials."""
    finish: Callable[[TokenSet], Awaitable[TokenSet]] | None = field(default=None, compare=False)
    """The grant's last step, given the issued set: it stores what the grant must remember
    (the code's issued tokens, the refresh rotation) and adds the refresh token; it may raise
    (the set is then never sent)."""


@dataclass(frozen=True, slots=True)
class UserContext:
    """The sign-in behind a user grant (OpenID Connect Core §2: ``nonce``, ``auth_time``,
    ``sid``), carried from the authorization code."""

    user_id: str
    nonce: str = ""
    auth_time: int = 0
    session_id: str = ""
    user: User | None = None
    """The user as the grant read it (its check that the user is active): the ID token's
    subject. ``None``: no ID token is issued (a sign-in whose auth time is not known)."""


@dataclass(frozen=True, slots=True)
class AccessToken:
    """An issued access token and what the token response says about it."""

    access_token: str
    expires_in: int
    scope: tuple[str, ...]
    token_type: str = "Bearer"
    token_id: str = ""
    """What names the token without granting anything (for the audit trail and logs): a JWT's
    ``jti``, an opaque token's hex selector."""
    token_format: TokenFormat = "jwt"


@dataclass(frozen=True, slots=True)
class TokenSet:
    """What one token request issues (RFC 6749 §5.1, OpenID Connect Core §3.1.3.3)."""

    access: AccessToken
    refresh_token: str | None = None
    """Issued by the authorization_code and refresh_token grants when the client may refresh."""
    id_token: str | None = None
    """Issued for an OpenID Connect request (scope ``openid``)."""


class AccessTokenIssuer(Protocol):
    async def issue(self, authorization: Authorization) -> AccessToken: ...


class IdTokenIssuer(Protocol):
    """The OpenID Connect hook: called for a user grant whose scope has ``openid`` (with the
    access token, for ``at_hash``); returns the signed ID token."""

    async def issue(self, authorization: Authorization, access: AccessToken) -> str | None: ...


class OpaqueTokenIssuer:
    """A split token in the checksummed format (:mod:`~oauth_server.oauth.tokens.format`): a
    256-bit secret stored only as its SHA-256, with client, subject, scope, audience and times."""

    def __init__(
        self, repository: AccessTokenRepository, *, codec: TokenCodec, clock: Clock, ttl: int
    ) -> None:
        self._repository = repository
        self._codec = codec
        self._clock = clock
        self._ttl = ttl

    async def issue(self, grant: Authorization) -> AccessToken:
        clock_now = self._clock.now()
        token = self._codec.mint("access_token", clock_now)
        now = int(clock_now)
        await self._repository.add(
            token=AccessTokenRecord(
                selector=token.selector,
                verifier_hash=token.verifier_hash,
                client_id=grant.client.client_id,
                subject=grant.subject,
                scope=format_scope(grant.scope),
                issued_at=now,
                expires_at=now + self._ttl,
                audience=" ".join(grant.audience),
            )
        )
        return AccessToken(
            access_token=token.value,
            expires_in=self._ttl,
            scope=grant.scope,
            token_id=token.selector.hex(),
            token_format="opaque",
        )


class JwtAccessTokenIssuer:
    """RFC 9068 JWT access tokens, signed with the ring's active key. No database write: a
    revocation is recorded by ``jti`` instead."""

    def __init__(self, ring: KeyRing, *, issuer: str, clock: Clock, ttl: int) -> None:
        self._ring = ring
        self._issuer = issuer
        self._clock = clock
        self._ttl = ttl
        self._headers: dict[str, bytes] = {}
        # jti (RFC 7519 §4.1.7) must be unique, not unpredictable: 96 random bits drawn once
        # per process, then a counter. A random value per token cost a getrandom() system
        # call, 6% of JWT issuance in the profile.
        self._jti_prefix = base64.urlsafe_b64encode(os.urandom(12)).decode("ascii")
        self._jti_counter = itertools.count()

    def _jti(self) -> str:
        return f"{self._jti_prefix}{next(self._jti_counter):x}"

    async def issue(self, grant: Authorization) -> AccessToken:
        now = int(self._clock.now())
        key = self._ring.signing_key(now)
        audience = grant.audience
        jti = self._jti()
        claims = {
            "iss": self._issuer,
            "sub": grant.subject,
            "aud": audience[0] if len(audience) == 1 else list(audience),
            "exp": now + self._ttl,
            "iat": now,
            "jti": jti,
            "client_id": grant.client.client_id,
            "scope": format_scope(grant.scope),
        }
        header = self._headers.get(key.kid)
        if header is None:  # once per key: the header of RFC 9068 §2.1 never changes
            header = self._headers[key.kid] = base64.urlsafe_b64encode(
                orjson.dumps({"typ": "at+jwt", "alg": key.alg, "kid": key.kid})
            ).rstrip(b"=")
        value = key.sign_compact(header, orjson.dumps(claims))
        return AccessToken(
            access_token=value, expires_in=self._ttl, scope=grant.scope, token_id=jti
        )


class TokenService:
    """Issues the access token with the issuer matching the client's token format, the ID
    token (``id_tokens``, for a user grant with scope ``openid``), then hands the set to the
    grant's ``finish`` step, which adds the refresh token."""

    def __init__(
        self,
        issuers: Mapping[TokenFormat, AccessTokenIssuer],
        *,
        id_tokens: IdTokenIssuer | None = None,
    ) -> None:
        self._issuers = dict(issuers)
        self._id_tokens = id_tokens

    async def issue(self, authorization: Authorization) -> TokenSet:
        client = authorization.client
        issuer = self._issuers.get(client.token_format) or self._issuers["opaque"]
        tokens = TokenSet(await issuer.issue(authorization))
        if (
            self._id_tokens is not None
            and authorization.user is not None
            and "openid" in authorization.scope
        ):
            id_token = await self._id_tokens.issue(authorization, tokens.access)
            if id_token is not None:
                tokens = replace(tokens, id_token=id_token)
        if authorization.finish is not None:
            tokens = await authorization.finish(tokens)
        return tokens
