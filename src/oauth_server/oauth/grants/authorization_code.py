"""The authorization code grant (RFC 6749 §4.1.3, OAuth 2.1 §4.1.3), with PKCE (RFC 7636).

Order of the checks: the verifier's syntax first (``invalid_request`` without touching the
code), then the code is consumed atomically in the store — the one redemption that wins does,
across processes — and only then are client, redirect URI, PKCE and user compared. A code
redeemed by a request that fails a check is spent all the same (it may be in an attacker's
hands). A second redemption that passes every check is a replay of a stolen or leaked code:
``invalid_grant``, and every token issued from the code is revoked (§4.1.2: "SHOULD revoke …
all tokens previously issued based on that authorization code"). A replay that fails a check
(another client, a wrong verifier) revokes nothing (OAuth 2.1 §7.5.3), so an attacker holding
only the code cannot end the legitimate client's grant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Final

from oauth_server.errors import InvalidGrant, InvalidRequest
from oauth_server.oauth.client_auth import AuthenticatedClient
from oauth_server.oauth.grants.pkce import check_verifier_syntax, verify_pkce
from oauth_server.oauth.grants.signin import SignInGrants, issues_refresh_token
from oauth_server.oauth.scopes import parse_scope
from oauth_server.oauth.tokens.issue import Authorization, TokenSet, UserContext
from oauth_server.storage.models import AuthorizationCode, Client, RefreshFamily

__all__ = ["AuthorizationCodeGrant"]


class AuthorizationCodeGrant:
    grant_type: Final = "authorization_code"
    parameters: Final = ("code", "redirect_uri", "code_verifier", "client_id")

    def __init__(self, context: SignInGrants) -> None:
        self._ctx = context

    async def validate(
        self, *, client: AuthenticatedClient, params: Mapping[str, str]
    ) -> Authorization:
        code_value = params.get("code")
        if code_value is None:
            raise InvalidRequest("the code parameter is required")
        verifier = params.get("code_verifier")
        check_verifier_syntax(verifier)
        # Not of this server's making (its checksum fails): refused without a database read.
        parsed = self._ctx.codec.parse("authorization_code", code_value)
        if parsed is None:  # answered like an unknown code: no hint of what was wrong
            raise InvalidGrant("invalid or expired authorization code")
        selector, verifier_hash = parsed
        redemption = await self._ctx.storage.codes.consume(
            selector=selector, verifier_hash=verifier_hash, now=self._ctx.now()
        )
        if redemption is None:  # unknown, or expired before anyone redeemed it
            raise InvalidGrant("invalid or expired authorization code")
        registered = client.client
        code = redemption.code
        self._check(code, registered, params.get("redirect_uri"), verifier)
        if redemption.outcome == "replayed":
            # Every check passed: the very request that redeemed it once, presented again.
            self._ctx.observer.code_replayed()
            await self._ctx.revoke_code_issued(
                selector, client_id=registered.client_id, reason="code redeemed twice"
            )
            raise InvalidGrant("authorization code already used")
        user = await self._ctx.active_user(code.user_id)
        scope = parse_scope(code.scope)
        return Authorization(
            client=registered,
            subject=code.user_id,
            scope=scope,
            audience=self._ctx.audience(code.resource),
            user=UserContext(
                user_id=code.user_id,
                nonce=code.nonce,
                auth_time=code.auth_time,
                session_id=code.session_id,
                user=user,
            ),
            finish=lambda tokens: self._finish(tokens, registered, code, scope),
        )

    @staticmethod
    def _check(
        code: AuthorizationCode, client: Client, redirect_uri: str | None, verifier: str | None
    ) -> None:
        # RFC 6749 §4.1.3: the code "was issued to the authenticated confidential client, or …
        # the public client"; otherwise invalid_grant (§5.2).
        if code.client_id != client.client_id:
            raise InvalidGrant("authorization code was issued to another client")
        # §4.1.3: redirect_uri is REQUIRED, and must be identical, when the authorization
        # request included it. The authorization endpoint stores it as sent ("" when omitted).
        if code.redirect_uri and redirect_uri != code.redirect_uri:
            raise InvalidGrant("redirect_uri does not match the authorization request")
        if not code.redirect_uri and redirect_uri not in (None, *client.redirect_uris):
            raise InvalidGrant("redirect_uri is not registered for this client")
        verify_pkce(
            challenge=code.code_challenge,
            method=code.code_challenge_method,
            verifier=verifier,
            required=client.require_pkce or client.client_type == "public",
        )

    async def _finish(
        self, tokens: TokenSet, client: Client, code: AuthorizationCode, scope: tuple[str, ...]
    ) -> TokenSet:
        ctx = self._ctx
        now = ctx.now()
        issued = ctx.issued(tokens.access, client, now)
        family_id: str | None = None
        refresh_value: str | None = None
        if issues_refresh_token(client, scope):
            family_id = ctx.new_family_id()
            token, record = ctx.new_refresh_token(
                family_id=family_id,
                client_id=client.client_id,
                user_id=code.user_id,
                scope=code.scope,
                resource=code.resource,
                now=now,
                auth_time=code.auth_time,
                session_id=code.session_id,
            )
            family = RefreshFamily(
                family_id=family_id,
                client_id=client.client_id,
                user_id=code.user_id,
                created_at=now,
                expires_at=now + ctx.refresh_max_ttl,
            )
            await ctx.storage.refresh_tokens.create_family(family=family, token=record)
            refresh_value = token.value
        recorded = await ctx.storage.codes.record_issued(
            selector=code.selector, tokens=(issued,), refresh_family_id=family_id, now=now
        )
        if not recorded:
            # A replay was seen between the redemption and this record: it could not revoke
            # what is issued here, so this does. The response still goes out — this request
            # is the one redemption that succeeded (of 20 concurrent ones exactly one gets a
            # 200) — but what it carries is already void everywhere, as §4.1.2 asks for every
            # token issued from a replayed code.
            await ctx.revoke_code_issued(
                code.selector, client_id=client.client_id, reason="replay during redemption"
            )
        return replace(tokens, refresh_token=refresh_value)
