"""The refresh token grant (RFC 6749 §6, OAuth 2.1 §4.3), rotated on every use.

Refresh tokens are opaque split tokens (a 256-bit secret, stored as its SHA-256) bound to a
client, a user, a scope, a resource and a family (one per authorization code). Every use
rotates the token (RFC 9700 §4.14.2): the store consumes it and stores its successor in one
compare-and-set, so of concurrent uses exactly one succeeds, across processes. A token that
was rotated already, presented again, shows that two parties hold it: ``invalid_grant`` and
the whole family is revoked — its refresh tokens and every access token issued from it, JWTs
included (``OAUTH_SERVER_REFRESH_REUSE_GRACE`` lets a client that lost the response retry once
within the window: it gets a fresh pair and the unused successor is revoked). A token of
another client is ``invalid_grant`` and revokes nothing (the presenter proved nothing).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import replace
from typing import Final

from oauth_server.errors import InvalidGrant, InvalidRequest, InvalidScope
from oauth_server.oauth.client_auth import AuthenticatedClient
from oauth_server.oauth.grants.signin import SignInGrants
from oauth_server.oauth.scopes import parse_scope
from oauth_server.oauth.tokens.issue import Authorization, TokenSet, UserContext
from oauth_server.storage.models import Client, RefreshTokenRecord

__all__ = ["RefreshTokenGrant"]


class RefreshTokenGrant:
    grant_type: Final = "refresh_token"
    parameters: Final = ("refresh_token", "scope", "client_id")

    def __init__(self, context: SignInGrants) -> None:
        self._ctx = context

    async def validate(
        self, *, client: AuthenticatedClient, params: Mapping[str, str]
    ) -> Authorization:
        value = params.get("refresh_token")
        if value is None:
            raise InvalidRequest("the refresh_token parameter is required")
        # Not of this server's making (its checksum fails): refused without a database read.
        parsed = self._ctx.codec.parse("refresh_token", value)
        if parsed is None:
            raise InvalidGrant("invalid refresh token")
        selector, verifier_hash = parsed
        record = await self._ctx.storage.refresh_tokens.get(selector=selector)
        if record is None or not hmac.compare_digest(record.verifier_hash, verifier_hash):
            raise InvalidGrant("invalid refresh token")
        registered = client.client
        # §6: the server MUST "validate the refresh token" and that it was issued to the
        # authenticated client. Another client's token revokes nothing: it proved no right.
        if record.client_id != registered.client_id:
            raise InvalidGrant("refresh token was issued to another client")
        granted = parse_scope(record.scope)
        requested = params.get("scope")
        # §6: "The requested scope MUST NOT include any scope not originally granted … and if
        # omitted is treated as equal to the scope originally granted"; OAuth 2.1 §4.3.1.
        scope = granted if requested is None else parse_scope(requested)
        if not set(scope) <= set(granted):
            raise InvalidScope("the requested scope exceeds the scope originally granted")
        user = await self._ctx.active_user(record.user_id)
        return Authorization(
            client=registered,
            subject=record.user_id,
            scope=scope,
            audience=self._ctx.audience(record.resource),
            # OIDC Core §12.2: the ID token of a refresh keeps the original's auth_time (and
            # sid); it carries no nonce. A token that predates the stored auth time gets none.
            user=UserContext(
                user_id=record.user_id,
                auth_time=record.auth_time,
                session_id=record.session_id,
                user=user if record.auth_time else None,
            ),
            finish=lambda tokens: self._rotate(tokens, registered, record, verifier_hash),
        )

    async def _rotate(
        self,
        tokens: TokenSet,
        client: Client,
        record: RefreshTokenRecord,
        verifier_hash: bytes,
    ) -> TokenSet:
        ctx = self._ctx
        now = ctx.now()
        # The successor keeps the family's full scope: a narrowed request narrows only this
        # access token (OAuth 2.1 §4.3.1).
        token, successor = ctx.new_refresh_token(
            family_id=record.family_id,
            client_id=record.client_id,
            user_id=record.user_id,
            scope=record.scope,
            resource=record.resource,
            now=now,
            auth_time=record.auth_time,
            session_id=record.session_id,
        )
        rotation = await ctx.storage.refresh_tokens.rotate(
            selector=record.selector,
            verifier_hash=verifier_hash,
            successor=successor,
            access_tokens=(ctx.issued(tokens.access, client, now),),
            now=now,
            grace=ctx.refresh_reuse_grace,
        )
        # Whatever fails here: the access token just issued is never sent (an opaque one's
        # secret is dropped with this frame; a JWT was recorded nowhere and goes nowhere).
        if rotation is None:
            raise InvalidGrant("invalid refresh token")
        if rotation.outcome == "rotated":
            ctx.observer.refresh_rotated()
            return replace(tokens, refresh_token=token.value)
        if rotation.outcome == "reused":
            # RFC 9700 §4.14.2: an invalidated refresh token presented again — the server
            # cannot tell attacker from client, so it revokes the whole family.
            ctx.observer.refresh_reused()
            ctx.audit.record(
                "refresh_token_reused",
                client_id=client.client_id,
                user_id=record.user_id,
                family_id=record.family_id,
                token_id=record.selector.hex(),
                reason="within grace, successor used" if rotation.within_grace else "rotated",
            )
            await ctx.revoke_family(
                record.family_id, client_id=client.client_id, reason="refresh_token_reused"
            )
            raise InvalidGrant("refresh token already used")
        raise InvalidGrant(f"refresh token {rotation.outcome}")  # revoked or expired
