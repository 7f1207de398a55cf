"""Token revocation (RFC 7009)."""

from __future__ import annotations

import hmac
import logging

from oauth_server.audit import NO_AUDIT, AuditRecorder
from oauth_server.clock import Clock
from oauth_server.errors import InvalidRequest, InvalidToken
from oauth_server.oauth.client_auth import ClientAuthenticator
from oauth_server.oauth.cors import CorsGate
from oauth_server.oauth.http import NO_STORE, OAuthRequest, OAuthResponse
from oauth_server.oauth.params import parse_body
from oauth_server.oauth.tokens.format import TokenCodec
from oauth_server.oauth.tokens.verify.claims import TokenVerifier
from oauth_server.oauth.tokens.verify.jwt import looks_like_jwt
from oauth_server.oauth.tokens.verify.opaque import OpaqueTokenVerifier
from oauth_server.oauth.tokens.verify.revocation import RevokedJtis
from oauth_server.oauth.tokens.voided import IssuedTokenVoider
from oauth_server.storage.models import RevokedToken
from oauth_server.storage.protocols import Storage

__all__ = ["RevocationEndpoint"]

log = logging.getLogger(__name__)


class RevocationEndpoint:
    """§2.1: the client authenticates and names a token; §2.2: the answer is 200 whether the
    token was revoked or was invalid, unknown or already revoked (so it cannot be used to test
    tokens). A token issued to another client is left alone (§2.1: the server "verifies
    whether the token was issued to the client making the revocation request"). Any storage
    failure propagates and becomes 503: a 200 must mean the revocation is recorded.

    Refresh tokens (with ``voider``): revoking one revokes its whole family — every refresh
    token of the grant and every access token issued from it (§2.1: the server SHOULD also
    invalidate the access tokens of the same grant). A public client revokes its own tokens
    with ``none`` (its client_id alone, OAuth 2.1 §2.4): that proves no more than holding the
    token, which is all revocation needs."""

    def __init__(
        self,
        *,
        authenticator: ClientAuthenticator,
        jwt_verifier: TokenVerifier,
        opaque_verifier: OpaqueTokenVerifier,
        storage: Storage,
        codec: TokenCodec,
        revoked: RevokedJtis,
        clock: Clock,
        audit: AuditRecorder = NO_AUDIT,
        voider: IssuedTokenVoider | None = None,
    ) -> None:
        self._voider = voider
        self._authenticator = authenticator
        self._jwt = jwt_verifier
        self._opaque = opaque_verifier
        self._storage = storage
        self._codec = codec
        self._revoked = revoked
        self._clock = clock
        self._audit = audit

    async def handle(self, request: OAuthRequest, *, cors: CorsGate | None = None) -> OAuthResponse:
        params = parse_body(request)
        client = await self._authenticator.authenticate(
            request, params, allow_none=self._voider is not None
        )
        if cors is not None:  # before anything is revoked (oauth/cors.py rule 2)
            cors.admit(client.client)
        token = params.get("token")
        if token is None:
            raise InvalidRequest("the token parameter is required")
        # token_type_hint is only a hint (§2.1): JWTs are told by shape; an opaque value may be
        # an access or a refresh token (same shape), searched in the hinted store first.
        client_id = client.client.client_id
        if looks_like_jwt(token):
            revoked = await self._revoke_jwt(token, client_id)
        elif params.get("token_type_hint") == "refresh_token":
            revoked = await self._revoke_refresh(token, client_id)
            if revoked is None:
                revoked = await self._revoke_opaque(token, client_id)
        else:
            revoked = await self._revoke_opaque(token, client_id)
            if revoked is None:
                revoked = await self._revoke_refresh(token, client_id)
        if revoked is not None:
            token_id, token_type = revoked
            self._audit.record(
                "token_revoked",
                client_id=client_id,
                token_id=token_id,
                token_type=token_type,
                ip=request.client_ip,
            )
        return OAuthResponse(status=200, body=b"", headers=NO_STORE)

    async def _revoke_jwt(self, token: str, client_id: str) -> tuple[str, str] | None:
        """``(jti, "jwt")`` if this call revoked the token."""
        try:
            claims = await self._jwt.verify(token)
        except InvalidToken:
            return None  # invalid, expired or already revoked: nothing to do
        if claims.client_id != client_id or claims.jti is None:
            log.info("client %s asked to revoke a token of client %s", client_id, claims.client_id)
            return None
        added = await self._revoked.revoke(
            self._storage.revocations,
            RevokedToken(
                jti=claims.jti,
                client_id=claims.client_id,
                expires_at=claims.expires_at,
                revoked_at=int(self._clock.now()),
            ),
        )
        return (claims.jti, "jwt") if added else None

    async def _revoke_opaque(self, token: str, client_id: str) -> tuple[str, str] | None:
        """``(hex selector, "opaque")`` if this call revoked the token."""
        found = await self._opaque.find(token)
        if found is None:
            return None
        if found.client_id != client_id:
            log.info("client %s asked to revoke a token of client %s", client_id, found.client_id)
            return None
        revoked = await self._opaque.revoke(found, now=int(self._clock.now()))
        return (found.selector.hex(), "opaque") if revoked else None

    async def _revoke_refresh(self, token: str, client_id: str) -> tuple[str, str] | None:
        """``(family id, "refresh_token")`` if the token is a refresh token of this client
        (its family is then revoked, whatever state it was in)."""
        parsed = self._codec.parse("refresh_token", token) if self._voider is not None else None
        if parsed is None or self._voider is None:
            return None
        selector, verifier_hash = parsed
        record = await self._storage.refresh_tokens.get(selector=selector)
        if record is None or not hmac.compare_digest(record.verifier_hash, verifier_hash):
            return None
        if record.client_id != client_id:
            log.info(
                "client %s asked to revoke a refresh token of client %s",
                client_id,
                record.client_id,
            )
            return None
        revocation = await self._storage.refresh_tokens.revoke_family(
            family_id=record.family_id, now=int(self._clock.now())
        )
        self._voider.voided(revocation.access_tokens)
        self._audit.record(
            "refresh_family_revoked",
            client_id=client_id,
            family_id=record.family_id,
            reason="revocation request",
            count=len(revocation.access_tokens),
        )
        return (record.family_id, "refresh_token") if revocation.family_ids else None
