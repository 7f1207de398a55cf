"""The composition root of the core: settings and storage in, wired services out.

``create_app`` (web) and the CLI both build on :func:`build_services`; nothing else constructs
core objects, so there is one place to read how the server is put together.
"""

from __future__ import annotations

import logging
import os
import secrets
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import orjson

from oauth_server.accounts import Accounts, Argon2Hasher, PasswordHashing
from oauth_server.admin import ADMIN_REALM, Admin
from oauth_server.audit import NO_AUDIT, AuditRecorder, AuditTrail
from oauth_server.clock import Clock, SystemClock
from oauth_server.config import Settings
from oauth_server.maintenance import Purger, change_retention
from oauth_server.oauth.client_auth import ClientAuthenticator
from oauth_server.oauth.clients import CLIENT_CHANGE, ClientDirectory, ClientRegistry
from oauth_server.oauth.endpoints.authorize import AuthorizationEndpoint
from oauth_server.oauth.endpoints.introspect import IntrospectionEndpoint
from oauth_server.oauth.endpoints.metadata import (
    PROTECTED_RESOURCE_PATH,
    authorization_server_metadata,
    protected_resource_metadata,
)
from oauth_server.oauth.endpoints.revoke import RevocationEndpoint
from oauth_server.oauth.endpoints.token import TokenEndpoint
from oauth_server.oauth.grants import SignInGrants, default_grants
from oauth_server.oauth.interaction import SignIn
from oauth_server.oauth.keys import KEYS_CHANGE, KeyEncryption, KeyError_, KeyManager, KeyRing
from oauth_server.oauth.ratelimit import RateLimiter, RateLimitPolicy
from oauth_server.oauth.scopes import USER_SCOPES
from oauth_server.oauth.tokens.id_token import GrantIdTokens, IdTokenIssuer, IdTokenVerifier
from oauth_server.oauth.tokens.issue import JwtAccessTokenIssuer, OpaqueTokenIssuer, TokenService
from oauth_server.oauth.tokens.verify.any_format import AnyTokenVerifier
from oauth_server.oauth.tokens.verify.jwt import JwtVerifier
from oauth_server.oauth.tokens.verify.opaque import OpaqueTokenVerifier
from oauth_server.oauth.tokens.verify.revocation import RevokedClients, RevokedJtis
from oauth_server.oauth.tokens.voided import IssuedTokenVoider
from oauth_server.resource.bearer import ResourceGuard
from oauth_server.resource.restaurants import READ_SCOPES, WRITE_SCOPES, RestaurantService
from oauth_server.resource.userinfo import UserinfoEndpoint
from oauth_server.storage import Storage, open_storage
from oauth_server.storage.models import (
    CLIENT_REVOCATION_CHANGE,
    JTI_CHANGE,
    RESTAURANTS_CHANGE,
    TOKEN_CHANGE,
)
from oauth_server.sync import ChangeSync

__all__ = [
    "Services",
    "build_accounts",
    "build_key_manager",
    "build_purger",
    "build_services",
    "max_token_age",
]

RESOURCE_REALM = "restaurants"
SCOPES = sorted(READ_SCOPES | WRITE_SCOPES)
"""The restaurants API's scopes (its RFC 9728 metadata)."""
KNOWN_SCOPES = sorted(READ_SCOPES | WRITE_SCOPES | USER_SCOPES)
"""Every scope this server knows (RFC 8414 ``scopes_supported``): the API's and OpenID
Connect's."""


@dataclass
class Services:
    settings: Settings
    storage: Storage
    clock: Clock
    audit: AuditTrail
    """This process's audit trail. Components that report security events are given it at
    construction; anything else with an event to report (the rate limiter) calls
    ``services.audit.record("rate_limited", ip=…, client_id=…, limit=…)``."""
    clients: ClientDirectory
    registry: ClientRegistry
    keys: KeyManager
    revoked: RevokedJtis
    revoked_clients: RevokedClients
    limiter: RateLimiter | None
    token_endpoint: TokenEndpoint
    introspection: IntrospectionEndpoint
    revocation: RevocationEndpoint
    restaurants: RestaurantService
    guard: ResourceGuard
    id_tokens: IdTokenIssuer
    """Signs OpenID Connect ID tokens (the code and refresh grants call it)."""
    id_token_hints: IdTokenVerifier
    """Verifies ``id_token_hint`` values (authorize, end-session)."""
    userinfo: UserinfoEndpoint
    sync: ChangeSync
    purger: Purger
    as_metadata: bytes
    """RFC 8414 metadata, which is also the OpenID Provider metadata (one document)."""
    prm_metadata: bytes
    accounts: Accounts
    signin: SignIn
    authorize: AuthorizationEndpoint
    admin: Admin
    """The admin core (the admin API's)."""
    admin_guard: ResourceGuard
    """Bearer tokens at the admin API: the restaurants API's audience, realm ``admin``."""

    async def start(self) -> None:
        await self.audit.start()
        # The feed's high-water mark is taken first, so nothing written while the keys and
        # revocations load below can slip between the two.
        await self.sync.start()
        await self.keys.start()
        await self.revoked.load(self.storage.revocations)
        await self.revoked_clients.load(self.storage.revocations)
        await self.purger.start()

    async def close(self) -> None:
        if self.limiter is not None:
            await self.limiter.close()
        await self.purger.stop()
        await self.keys.stop()
        await self.sync.stop()
        self.accounts.hashing.close()
        await self.audit.close()  # writes what is still buffered
        await self.storage.close()


def max_token_age(settings: Settings) -> int:
    """How long after its ``iat`` an access token can still be accepted: the lifetime cap the
    verifiers enforce plus the leeway, twice (on ``exp - iat`` and on ``exp``)."""
    return settings.access_token_ttl + 2 * settings.jwt_leeway


def build_key_manager(
    settings: Settings, storage: Storage, clock: Clock, *, audit: AuditRecorder = NO_AUDIT
) -> KeyManager:
    # A key stays published until every token it signed has expired: access and ID tokens.
    token_ttl = max(settings.access_token_ttl, settings.id_token_ttl)
    ring = KeyRing(token_ttl=token_ttl, leeway=settings.jwt_leeway)
    return KeyManager(
        storage,
        ring,
        encryption=KeyEncryption(load_secret_key(settings)),
        clock=clock,
        alg=settings.signing_alg,
        rotation_interval=settings.key_rotation_interval,
        publish_lead=settings.key_publish_lead,
        audit=audit,
    )


def build_accounts(
    settings: Settings, storage: Storage, clock: Clock, *, audit: AuditRecorder = NO_AUDIT
) -> Accounts:
    """Users, with the configured argon2id parameters; the caller closes
    ``accounts.hashing`` (its worker threads) when done."""
    hasher = Argon2Hasher(
        time_cost=settings.password_hash_time_cost,
        memory_cost=settings.password_hash_memory_cost,
        parallelism=settings.password_hash_parallelism,
    )
    hashing = PasswordHashing(hasher, concurrency=settings.password_hash_concurrency)
    return Accounts(
        storage.users,
        hashing,
        clock=clock,
        audit=audit,
        refresh_tokens=storage.refresh_tokens,
        sessions=storage.sessions,
    )


def build_purger(settings: Settings, storage: Storage, keys: KeyManager, clock: Clock) -> Purger:
    return Purger(
        storage,
        keys=keys,
        clock=clock,
        interval=settings.purge_interval,
        change_retention=change_retention(
            access_token_ttl=settings.access_token_ttl, jwt_leeway=settings.jwt_leeway
        ),
    )


log = logging.getLogger("oauth_server.oauth.keys")


def load_secret_key(settings: Settings) -> bytes:
    """The configured secret, or in development one generated once into ``secret_key_file``.

    Here, in the composition root, so that the key ring (oauth/keys.py) reads no settings and
    writes no files: it is given the secret."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode("utf-8")
    if settings.env == "production":
        raise KeyError_("OAUTH_SERVER_SECRET_KEY must be set in production")
    path: Path = settings.secret_key_file
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with suppress(FileExistsError):  # another process created it first: use theirs
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
            log.warning(
                "generated a development secret key in %s; set OAUTH_SERVER_SECRET_KEY in "
                "production",
                path,
            )
    return path.read_text().strip().encode("utf-8")


def rate_limit_policy(settings: Settings) -> RateLimitPolicy:
    """The rate limiter's policy from the settings (the settings know nothing of the core)."""
    return RateLimitPolicy(
        auth_failures_per_client_address=settings.rate_limit_auth_failures_per_client_address,
        auth_failures_per_client=settings.rate_limit_auth_failures_per_client,
        auth_failures_per_address=settings.rate_limit_auth_failures_per_address,
        bearer_failures_per_address=settings.rate_limit_bearer_failures_per_address,
        tokens_per_client=settings.rate_limit_tokens_per_client,
        introspections_per_client=settings.rate_limit_introspections_per_client,
        login_failures_per_username=settings.rate_limit_login_failures_per_username,
        login_failures_per_address=settings.rate_limit_login_failures_per_address,
    )


def build_services(
    settings: Settings, *, storage: Storage | None = None, clock: Clock | None = None
) -> Services:
    clock = clock or SystemClock()
    if storage is None:
        storage = open_storage(settings.database_url, pool_size=settings.database_pool_size)
    issuer = settings.public_issuer
    resource = settings.resource_id

    audit = AuditTrail(storage.audit, clock=clock, program="server")
    directory = ClientDirectory(storage.clients)
    limiter = (
        RateLimiter(
            rate_limit_policy(settings),
            redis_url=settings.redis_url,
            key_prefix=settings.redis_key_prefix,
            audit=audit,
            clock=clock,
        )
        if settings.rate_limits
        else None
    )
    authenticator = ClientAuthenticator(directory, limiter=limiter, audit=audit)
    keys = build_key_manager(settings, storage, clock, audit=audit)
    revoked = RevokedJtis(clock=clock, max_token_ttl=settings.access_token_ttl)
    revoked_clients = RevokedClients(clock=clock, max_token_age=max_token_age(settings))
    jwt_verifier = JwtVerifier(
        keys,
        issuer=issuer,
        clock=clock,
        leeway=settings.jwt_leeway,
        revoked=revoked,
        revoked_clients=revoked_clients,
        max_lifetime=settings.access_token_ttl,
    )
    sync = ChangeSync(storage.changes, clock=clock, interval=settings.cache_sync_interval)
    opaque_verifier = OpaqueTokenVerifier(
        storage.tokens,
        issuer=issuer,
        clock=clock,
        revoked_clients=revoked_clients,
        max_lifetime=settings.access_token_ttl,
        feed_current=sync.current,
    )
    # Tokens verified with a key that has left the ring are forgotten in the same step.
    keys.on_withdrawn(jwt_verifier.clear_cache)
    verifier = AnyTokenVerifier(jwt=jwt_verifier, opaque=opaque_verifier)
    restaurants = RestaurantService(storage.restaurants, clock=clock)

    sync.subscribe(CLIENT_CHANGE, directory.on_change)
    sync.subscribe(KEYS_CHANGE, keys.on_change)
    sync.subscribe(JTI_CHANGE, revoked.on_change)
    sync.subscribe(CLIENT_REVOCATION_CHANGE, revoked_clients.on_change)
    sync.subscribe(TOKEN_CHANGE, opaque_verifier.on_change)
    sync.subscribe(RESTAURANTS_CHANGE, restaurants.on_change)

    voider = IssuedTokenVoider(revoked=revoked, opaque=opaque_verifier)
    signin_grants = SignInGrants(
        storage=storage,
        clock=clock,
        voider=voider,
        default_resource=resource,
        refresh_idle_ttl=settings.refresh_token_idle_ttl,
        refresh_max_ttl=settings.refresh_token_max_ttl,
        refresh_reuse_grace=settings.refresh_reuse_grace,
        audit=audit,
    )
    grants = default_grants(default_resource=resource, signin=signin_grants)
    ttl = settings.access_token_ttl
    id_tokens = IdTokenIssuer(keys.ring, issuer=issuer, ttl=settings.id_token_ttl)
    tokens = TokenService(
        {
            "jwt": JwtAccessTokenIssuer(keys.ring, issuer=issuer, clock=clock, ttl=ttl),
            "opaque": OpaqueTokenIssuer(storage.tokens, clock=clock, ttl=ttl),
        },
        id_tokens=GrantIdTokens(id_tokens, clock=clock),
    )
    resource_metadata = f"{issuer}{PROTECTED_RESOURCE_PATH}"
    registry = ClientRegistry(
        storage,
        clock=clock,
        directory=directory,
        revoked_clients=revoked_clients,
        max_token_age=max_token_age(settings),
        audit=audit,
    )
    accounts = build_accounts(settings, storage, clock, audit=audit)
    signin = SignIn(
        storage,
        issuer=issuer,
        clock=clock,
        secret=load_secret_key(settings),
        code_ttl=settings.authorization_code_ttl,
        session_ttl=settings.session_ttl,
        interaction_ttl=settings.interaction_ttl,
        audit=audit,
    )
    return Services(
        settings=settings,
        storage=storage,
        clock=clock,
        audit=audit,
        clients=directory,
        registry=registry,
        keys=keys,
        revoked=revoked,
        revoked_clients=revoked_clients,
        limiter=limiter,
        token_endpoint=TokenEndpoint(
            authenticator=authenticator,
            grants=grants,
            tokens=tokens,
            limiter=limiter,
            audit=audit,
            audit_issued=settings.audit_token_issued,
        ),
        introspection=IntrospectionEndpoint(
            authenticator=authenticator,
            verifier=verifier,
            limiter=limiter,
        ),
        revocation=RevocationEndpoint(
            authenticator=authenticator,
            jwt_verifier=jwt_verifier,
            opaque_verifier=opaque_verifier,
            storage=storage,
            revoked=revoked,
            clock=clock,
            audit=audit,
            voider=voider,
        ),
        restaurants=restaurants,
        guard=ResourceGuard(
            verifier,
            resource=resource,
            realm=RESOURCE_REALM,
            resource_metadata=resource_metadata,
            limiter=limiter,
        ),
        id_tokens=id_tokens,
        id_token_hints=IdTokenVerifier(keys, issuer=issuer, clock=clock),
        userinfo=UserinfoEndpoint(verifier=verifier, users=storage.users, limiter=limiter),
        sync=sync,
        purger=build_purger(settings, storage, keys, clock),
        as_metadata=orjson.dumps(
            authorization_server_metadata(
                issuer=issuer, grant_types=sorted(grants), scopes=KNOWN_SCOPES
            )
        ),
        prm_metadata=orjson.dumps(
            protected_resource_metadata(
                resource=resource, issuer=issuer, scopes=SCOPES, name="Restaurants API"
            )
        ),
        accounts=accounts,
        signin=signin,
        authorize=AuthorizationEndpoint(
            clients=directory, signin=signin, default_resource=resource
        ),
        admin=Admin(
            storage,
            registry=registry,
            directory=directory,
            accounts=accounts,
            keys=keys,
            audit=audit,
            clock=clock,
        ),
        admin_guard=ResourceGuard(verifier, resource=resource, realm=ADMIN_REALM, limiter=limiter),
    )
