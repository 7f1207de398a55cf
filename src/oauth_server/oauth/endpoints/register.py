"""The client registration endpoint (RFC 7591 §3) and the client configuration endpoint
(RFC 7592 §2): ``POST /oauth/register``; ``GET``, ``PUT``, ``DELETE /oauth/register/{id}``.

Every request is first counted against its address's budget (429 once spent), so that each
unauthenticated request costs at most one rate-limit hit and one primary-key read before it
is refused. Then, in order:

- registration: the initial access token (unless registration is open) → the metadata
  (:mod:`oauth_server.oauth.registration`) → one transaction storing the client and its
  registration and counting the token's use → 201 with the client information response;
- management: the registration access token for *this* client id → the operation.

A missing, malformed, wrong, revoked, expired or used-up token is 401 ``invalid_token``
(RFC 6750 §3.1, as RFC 7591 §3 and RFC 7592 §2 ask), and a registration access token
presented for another client's URI is the same (it "is not valid" for it: the answer tells
nothing about which client ids exist). Every response carries ``Cache-Control: no-store``:
they hold credentials or describe them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any, Literal

from oauth_server.clock import Clock
from oauth_server.crypto import new_split_token, parse_split_token, verify_secret
from oauth_server.errors import InvalidClientMetadataError, InvalidToken, MissingToken
from oauth_server.oauth.clients import ClientRegistry, InvalidClientMetadata, NewClient
from oauth_server.oauth.http import OAuthRequest, OAuthResponse
from oauth_server.oauth.initial_tokens import InitialAccessTokens
from oauth_server.oauth.params import is_client_id
from oauth_server.oauth.ratelimit import RateLimiter
from oauth_server.oauth.registration import (
    ClientMetadata,
    RegistrationPolicy,
    client_document,
    parse_document,
    read_metadata,
)
from oauth_server.storage.models import Client, ClientRegistration
from oauth_server.storage.protocols import AlreadyExists, Storage

__all__ = ["REGISTRATION_PATH", "RegistrationEndpoint", "RegistrationMode"]

REGISTRATION_PATH = "/oauth/register"
RegistrationMode = Literal["initial-token", "open"]
_REALM = "client-registration"
_DUMMY = hashlib.sha256(b"no such registration").digest()
# RFC 7592 §2.2: "The request MUST NOT include the "registration_access_token",
# "registration_client_uri", "client_secret_expires_at", or "client_id_issued_at" fields".
_SERVER_MEMBERS = (
    "registration_access_token",
    "registration_client_uri",
    "client_secret_expires_at",
    "client_id_issued_at",
)


class RegistrationEndpoint:
    def __init__(
        self,
        *,
        storage: Storage,
        registry: ClientRegistry,
        initial_tokens: InitialAccessTokens,
        policy: RegistrationPolicy,
        mode: RegistrationMode,
        issuer: str,
        clock: Clock,
        limiter: RateLimiter | None = None,
    ) -> None:
        """Audit events are the registry's (:meth:`ClientRegistry.announce`)."""
        self._storage = storage
        self._registry = registry
        self._initial_tokens = initial_tokens
        self._policy = policy
        self._mode = mode
        self._issuer = issuer
        self._clock = clock
        self._limiter = limiter

    def client_uri(self, client_id: str) -> str:
        return f"{self._issuer}{REGISTRATION_PATH}/{client_id}"

    async def register(self, request: OAuthRequest) -> OAuthResponse:
        """RFC 7591 §3.1-3.2: register a client; 201 with its information response."""
        await self._count(request)
        initial = None
        if self._mode == "initial-token":
            token = await self._initial_tokens.find(_bearer(request))
            if token is None:
                raise InvalidToken(
                    "the initial access token is invalid, expired, revoked or used up",
                    realm=_REALM,
                )
            initial = token.selector
        metadata = read_metadata(parse_document(request.body, request.content_type), self._policy)
        for _ in range(3):  # a 128-bit random client id is taken: practically never
            new = self._build(metadata)
            client = new.client
            now = client.created_at
            handle = new_split_token(now)
            registration = ClientRegistration(
                client_id=client.client_id,
                token_selector=handle.selector,
                token_hash=handle.verifier_hash,
                initial_token=initial,
                metadata=metadata.extra_json(),
                created_at=now,
                updated_at=now,
            )
            try:
                stored = await self._storage.registrations.register(
                    client=client, registration=registration, now=now
                )
            except AlreadyExists:
                continue
            break
        else:  # pragma: no cover - three collisions of 128-bit random ids
            raise RuntimeError("could not choose an unused client id")
        if not stored:  # another registration took the token's last use meanwhile
            raise InvalidToken("the initial access token is used up", realm=_REALM)
        await self._registry.announce(
            client.client_id,
            "client_registered",
            ip=request.client_ip,
            scope=" ".join(sorted(client.scopes)),
            reason="open registration" if initial is None else "initial access token",
            token_id="" if initial is None else initial.hex(),
        )
        fields: list[tuple[str, Any]] = []
        if new.secret is not None:
            fields.append(("client_secret", new.secret))
        fields += [
            ("registration_access_token", handle.value),
            ("registration_client_uri", self.client_uri(client.client_id)),
        ]
        body = client_document(client, metadata.extra, fields=fields)
        return OAuthResponse.json(body, status=201, no_store=True)

    async def read(self, request: OAuthRequest, client_id: str) -> OAuthResponse:
        """RFC 7592 §2.1: the client's current configuration (no secret: only its hash is
        kept; RFC 7592 §3 lets the values differ from the registration response's)."""
        await self._count(request)
        registration, token = await self._authorize(request, client_id)
        client = await self._client(client_id)
        return self._document(client, registration, token)

    async def update(self, request: OAuthRequest, client_id: str) -> OAuthResponse:
        """RFC 7592 §2.2: replace the client's metadata with the document's. "Omitted fields
        MUST be treated as null or empty values by the server, indicating the client's
        request to delete them" — so the document is read exactly as a registration, with
        the same defaults and policy. The client id and secret never change."""
        await self._count(request)
        registration, token = await self._authorize(request, client_id)
        current = await self._client(client_id)
        document = parse_document(request.body, request.content_type)
        # §2.2: "The client MUST include its client_id field in the request, and it MUST be
        # the same as its currently issued client identifier."
        if document.get("client_id") != client_id:
            raise InvalidClientMetadataError("client_id must be present and name this client")
        for member in _SERVER_MEMBERS:
            if member in document:
                raise InvalidClientMetadataError(f"{member} is set by the server, not the client")
        # §2.2: "If the client includes the client_secret in its request, the value of this
        # field MUST match the currently issued client secret for that client. The client
        # MUST NOT be allowed to overwrite its existing client secret with its own chosen
        # value." Omitting it keeps the secret.
        if "client_secret" in document and not _secret_matches(current, document["client_secret"]):
            raise InvalidClientMetadataError("client_secret does not match this client's secret")
        metadata = read_metadata(document, self._policy)
        if metadata.public != (current.client_type == "public"):
            raise InvalidClientMetadataError(
                "token_endpoint_auth_method cannot change between none and a secret method "
                "(that would add or drop the secret): register a new client instead"
            )
        try:
            revised = await self._registry.revise(
                client_id,
                name=metadata.client_name,
                scopes=metadata.scopes,
                redirect_uris=metadata.redirect_uris,
                post_logout_redirect_uris=metadata.post_logout_redirect_uris,
                grant_types=metadata.grant_types,
                auth_methods=(metadata.token_endpoint_auth_method,),
            )
        except InvalidClientMetadata as exc:
            raise InvalidClientMetadataError(str(exc)) from None
        now = int(self._clock.now())
        extra = metadata.extra_json()
        if revised is None or not await self._storage.registrations.update(
            client=revised, metadata=extra, now=now
        ):
            raise InvalidToken("the registration access token is invalid", realm=_REALM)
        await self._registry.announce(
            client_id,
            "client_registration_updated",
            ip=request.client_ip,
            scope=" ".join(sorted(revised.scopes)),
        )
        return self._document(revised, registration, token, extra=metadata.extra)

    async def delete(self, request: OAuthRequest, client_id: str) -> OAuthResponse:
        """RFC 7592 §2.3: deregister; 204. The client, its registration and every token
        issued to it go in one transaction (the registry's delete)."""
        await self._count(request)
        await self._authorize(request, client_id)
        if not await self._registry.delete(
            client_id, ip=request.client_ip, reason="deregistered (RFC 7592)"
        ):
            raise InvalidToken("the registration access token is invalid", realm=_REALM)
        return OAuthResponse.empty(204, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _build(self, metadata: ClientMetadata) -> NewClient:
        try:
            return self._registry.build(
                name=metadata.client_name,
                grant_types=metadata.grant_types,
                scopes=metadata.scopes,
                client_type="public" if metadata.public else "confidential",
                auth_methods=(metadata.token_endpoint_auth_method,),
                redirect_uris=metadata.redirect_uris,
                post_logout_redirect_uris=metadata.post_logout_redirect_uris,
                # RFC 7591 §5: nothing vouches for a dynamically registered client, so a
                # person always consents, and PKCE is always required.
                require_consent=True,
                require_pkce=True,
            )
        except InvalidClientMetadata as exc:
            raise InvalidClientMetadataError(str(exc)) from None

    async def _count(self, request: OAuthRequest) -> None:
        if self._limiter is not None:
            await self._limiter.registration_requested(request.client_ip)

    async def _authorize(
        self, request: OAuthRequest, client_id: str
    ) -> tuple[ClientRegistration, str]:
        """The registration of ``client_id`` and the token, if the request's bearer token is
        its registration access token (RFC 7592 §3), compared in constant time."""
        value = _bearer(request)
        presented = parse_split_token(value)
        registration = (
            await self._storage.registrations.get(client_id=client_id)
            if presented is not None and is_client_id(client_id)
            else None
        )
        stored = registration.token_selector + registration.token_hash if registration else _DUMMY
        wanted = presented[0] + presented[1] if presented is not None else b""
        if registration is None or not hmac.compare_digest(stored, wanted):
            raise InvalidToken("the registration access token is invalid", realm=_REALM)
        return registration, value

    async def _client(self, client_id: str) -> Client:
        client = await self._storage.clients.get(client_id=client_id)
        if client is None:  # deleted between the two reads
            raise InvalidToken("the registration access token is invalid", realm=_REALM)
        return client

    def _document(
        self,
        client: Client,
        registration: ClientRegistration,
        token: str,
        *,
        extra: Any = None,
    ) -> OAuthResponse:
        """RFC 7592 §3: the client information response with ``registration_access_token``
        and ``registration_client_uri`` (both REQUIRED); the token is the one presented,
        which is not rotated."""
        if extra is None:
            extra = json.loads(registration.metadata)
        fields = [
            ("registration_access_token", token),
            ("registration_client_uri", self.client_uri(client.client_id)),
        ]
        body = client_document(client, extra, fields=fields)
        return OAuthResponse.json(body, no_store=True)


def _bearer(request: OAuthRequest) -> str:
    """The bearer token of the ``Authorization`` header (RFC 6750 §2.1); :class:`MissingToken`
    when there is none."""
    scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise MissingToken("a bearer token is required", realm=_REALM)
    return token.strip()


def _secret_matches(client: Client, presented: object) -> bool:
    if not isinstance(presented, str) or client.secret_hash is None:
        return False
    return verify_secret(presented, client.secret_hash)
