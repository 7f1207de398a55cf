"""Client authentication at the token, introspection and revocation endpoints.

Methods (RFC 6749 §2.3.1): ``client_secret_basic`` (the one every server MUST support) and
``client_secret_post``; the seed's JSON body carries the same members as the latter. Using two
methods in one request is ``invalid_request`` (OAuth 2.1 §3.2.1, RFC 6749 §2.3). Every failure
gives the same ``invalid_client`` answer, whether the client is unknown or the secret wrong,
and costs the same work; the audit trail (never the client) is told which it was.

``none`` (RFC 7591 §2; OAuth 2.1 §2.4, §3.2.1): a public client names itself with
``client_id`` in the body and presents no secret. It is accepted only when the caller allows
it (the token endpoint, for a grant of
:data:`~oauth_server.oauth.clients.PUBLIC_CLIENT_GRANT_TYPES`) and only for a client
registered as public; a confidential client presenting none, or a public client presenting a
secret, is ``invalid_client``, counted and audited like a wrong secret. A confidential client
must use a method it is registered for (both secret methods for clients registered before
client types). Unknown, confidential and public ids presenting none cost the same work (one
cached lookup, no hash); secret attempts always compare one hash.
"""

from __future__ import annotations

import binascii
from base64 import b64decode
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NoReturn
from urllib.parse import unquote_plus

from oauth_server.audit import NO_AUDIT, AuditRecorder
from oauth_server.crypto import DUMMY_SECRET_HASH, verify_secret
from oauth_server.errors import InvalidClient, InvalidRequest
from oauth_server.oauth.clients import ClientDirectory
from oauth_server.oauth.http import OAuthRequest
from oauth_server.oauth.params import is_client_id
from oauth_server.oauth.ratelimit import RateLimiter
from oauth_server.storage.models import AuthMethod, Client

__all__ = ["AuthMethod", "AuthenticatedClient", "ClientAuthenticator", "parse_basic"]

# Advertised in the metadata (RFC 8414). `none` joins the token and revocation endpoints'
# lists when a grant that accepts it (authorization_code, refresh_token) is served;
# introspection never accepts it.
SUPPORTED_AUTH_METHODS: tuple[AuthMethod, ...] = ("client_secret_basic", "client_secret_post")
_MAX_CREDENTIAL_LENGTH = 512


@dataclass(frozen=True, slots=True)
class AuthenticatedClient:
    client: Client
    method: AuthMethod


def parse_basic(header: str) -> tuple[str, str]:
    """Decode ``Basic base64(urlencode(id) ":" urlencode(secret))`` (RFC 6749 §2.3.1)."""
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        raise InvalidClient("unsupported client authentication scheme; use Basic")
    encoded = encoded.strip()
    if not encoded or len(encoded) > 4 * _MAX_CREDENTIAL_LENGTH:
        raise InvalidClient("malformed Basic credentials")
    try:
        decoded = b64decode(encoded, validate=True).decode("utf-8")
        client_id, sep, secret = decoded.partition(":")
        if not sep:
            raise ValueError("no colon")
        return unquote_plus(client_id, errors="strict"), unquote_plus(secret, errors="strict")
    except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
        raise InvalidClient("malformed Basic credentials") from None


def _failure(client: Client | None, well_formed: bool, method: AuthMethod) -> str:
    if not well_formed:
        return "malformed client id"
    if client is None:
        return "unknown client"
    if client.client_type == "public" or client.secret_hash is None:
        return "public client"
    return "wrong secret" if method in client.auth_methods else "method not registered"


def _none_failure(client: Client | None, well_formed: bool) -> str:
    if not well_formed:
        return "malformed client id"
    if client is None:
        return "unknown client"
    return "confidential client without a secret"


class ClientAuthenticator:
    def __init__(
        self,
        directory: ClientDirectory,
        *,
        limiter: RateLimiter | None = None,
        audit: AuditRecorder = NO_AUDIT,
    ) -> None:
        self._directory = directory
        self._limiter = limiter
        self._audit = audit

    async def authenticate(
        self, request: OAuthRequest, params: Mapping[str, str], *, allow_none: bool = False
    ) -> AuthenticatedClient:
        """The client the request authenticates, or :class:`InvalidClient`. ``allow_none``:
        a public client may authenticate with its client_id alone (see the module text)."""
        limiter, address = self._limiter, request.client_ip
        try:
            client_id, secret, method = self._credentials(request, params, allow_none)
        except InvalidClient as exc:
            self._failed(request, exc.description or "invalid client credentials")
            if limiter is not None:
                await limiter.before_authentication("", address)
                await limiter.authentication_failed("", address)
            raise
        if limiter is not None:
            await limiter.before_authentication(client_id, address)
        # A client id of the wrong syntax names no client: it is answered, counted and audited
        # as an unknown one, without a lookup (the database may be unable to store it).
        well_formed = is_client_id(client_id)
        client = (
            await self._directory.get(client_id[:_MAX_CREDENTIAL_LENGTH]) if well_formed else None
        )
        too_long = len(client_id) > _MAX_CREDENTIAL_LENGTH or len(secret) > _MAX_CREDENTIAL_LENGTH
        if method == "none":
            # No secret to compare: unknown, confidential and public ids cost the same lookup.
            public = client is not None and client.client_type == "public"
            if public and client is not None and "none" in client.auth_methods and not too_long:
                request.notes.client_id = client.client_id
                return AuthenticatedClient(client=client, method=method)
            reason = "credentials too long" if too_long else _none_failure(client, well_formed)
            await self._refuse(request, reason, client_id)
        stored = client.secret_hash if client is not None else None
        # Unknown client and wrong secret do the same work and give the same answer.
        matches = verify_secret(secret, stored or DUMMY_SECRET_HASH)
        if client is None or stored is None or not matches or too_long:
            reason = "credentials too long" if too_long else _failure(client, well_formed, method)
            await self._refuse(request, reason, client_id)
        if client.client_type != "confidential" or method not in client.auth_methods:
            await self._refuse(request, _failure(client, well_formed, method), client_id)
        request.notes.client_id = client.client_id
        return AuthenticatedClient(client=client, method=method)

    async def _refuse(self, request: OAuthRequest, reason: str, client_id: str) -> NoReturn:
        counted = client_id[:_MAX_CREDENTIAL_LENGTH]
        self._failed(request, reason, client_id=counted)
        if self._limiter is not None:
            await self._limiter.authentication_failed(counted, request.client_ip)
        raise InvalidClient("client authentication failed", detail=f"client_id={client_id!r}")

    def _failed(self, request: OAuthRequest, reason: str, *, client_id: str = "") -> None:
        # The client id as presented (unknown ones too: they show credential stuffing); the
        # secret never.
        self._audit.record(
            "client_auth_failed",
            client_id=client_id,
            ip=request.client_ip,
            endpoint=request.path,
            reason=reason,
        )

    @staticmethod
    def _credentials(
        request: OAuthRequest, params: Mapping[str, str], allow_none: bool
    ) -> tuple[str, str, AuthMethod]:
        header = request.headers.get("authorization")
        if header is not None:
            if "client_secret" in params:
                raise InvalidRequest("use only one client authentication method")
            client_id, secret = parse_basic(header)
            body_id = params.get("client_id")
            if body_id is not None and body_id != client_id:
                raise InvalidRequest("client_id in the body differs from the Basic credentials")
            return client_id, secret, "client_secret_basic"
        post_id = params.get("client_id")
        post_secret = params.get("client_secret")
        if post_id is not None and post_secret is None and allow_none:
            return post_id, "", "none"
        if post_id is None or post_secret is None:
            # Where `none` is not allowed, a client_id alone authenticates no one.
            raise InvalidClient("client authentication required")
        return post_id, post_secret, "client_secret_post"
