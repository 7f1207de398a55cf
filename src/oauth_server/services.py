"""The composition root of the core: settings and storage in, wired services out.

``create_app`` (web) and the CLI both build on :func:`build_services`; nothing else constructs
core objects, so there is one place to read how the server is put together.
"""

from __future__ import annotations

import logging
import os
import secrets
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import orjson

from oauth_server.accounts import Accounts, Argon2Hasher, PasswordHashing
from oauth_server.accounts.access import AccountAccess
from oauth_server.accounts.users import TokenVoider
from oauth_server.admin import ADMIN_REALM, Admin
from oauth_server.audit import NO_AUDIT, AuditRecorder, AuditTrail
from oauth_server.clock import Clock, SystemClock
from oauth_server.config import ConfigError, Settings
from oauth_server.errors import InvalidScope
from oauth_server.maintenance import Purger, change_retention
from oauth_server.oauth.client_auth import ClientAuthenticator
from oauth_server.oauth.clients import (
    CLIENT_CHANGE,
    SUPPORTED_GRANT_TYPES,
    ClientDirectory,
    ClientRegistry,
)
from oauth_server.oauth.endpoints.authorize import AuthorizationEndpoint
from oauth_server.oauth.endpoints.end_session import EndSession
from oauth_server.oauth.endpoints.introspect import IntrospectionEndpoint
from oauth_server.oauth.endpoints.metadata import (
    PROTECTED_RESOURCE_PATH,
    authorization_server_metadata,
    protected_resource_metadata,
)
from oauth_server.oauth.endpoints.register import REGISTRATION_PATH, RegistrationEndpoint
from oauth_server.oauth.endpoints.revoke import RevocationEndpoint
from oauth_server.oauth.endpoints.token import TokenEndpoint
from oauth_server.oauth.grants import SignInGrants, default_grants
from oauth_server.oauth.initial_tokens import InitialAccessTokens
from oauth_server.oauth.interaction import SignIn
from oauth_server.oauth.keys import KEYS_CHANGE, KeyEncryption, KeyError_, KeyManager, KeyRing
from oauth_server.oauth.ratelimit import RateLimiter, RateLimitPolicy
from oauth_server.oauth.registration import SUPPORTED_AUTH_METHODS, RegistrationPolicy
from oauth_server.oauth.scopes import USER_SCOPES, parse_scope
from oauth_server.oauth.tokens.format import TokenCodec
from oauth_server.oauth.tokens.id_token import GrantIdTokens, IdTokenIssuer, IdTokenVerifier
from oauth_server.oauth.tokens.issue import JwtAccessTokenIssuer, OpaqueTokenIssuer, TokenService
from oauth_server.oauth.tokens.verify.any_format import AnyTokenVerifier
from oauth_server.oauth.tokens.verify.jwt import JwtVerifier
from oauth_server.oauth.tokens.verify.opaque import OpaqueTokenVerifier
from oauth_server.oauth.tokens.verify.revocation import RevokedClients, RevokedJtis
from oauth_server.oauth.tokens.voided import IssuedTokenVoider
from oauth_server.observer import NO_OBSERVER, Observer
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
    "MIN_SECRET_KEY_LENGTH",
    "SECRET_KEY_REQUIRED",
    "SecretKeySource",
    "Services",
    "build_accounts",
    "build_key_manager",
    "build_purger",
    "build_services",
    "build_token_codec",
    "load_secret_key",
    "max_token_age",
    "registration_policy",
    "secret_key_source",
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
    account_access: AccountAccess
    """A signed-in user's apps, sessions and password (the account page)."""
    signin: SignIn
    codec: TokenCodec
    """Mints and parses opaque access tokens, refresh tokens and authorization codes."""
    authorize: AuthorizationEndpoint
    end_session: EndSession
    """RP-Initiated Logout (``/oauth/logout``)."""
    initial_tokens: InitialAccessTokens
    registration: RegistrationEndpoint | None
    """Dynamic client registration; ``None`` when ``OAUTH_SERVER_REGISTRATION`` is off."""
    admin: Admin
    """The admin core (the admin API's)."""
    admin_guard: ResourceGuard
    """Bearer tokens at the admin API: the restaurants API's audience, realm ``admin``."""
    observer: Observer = NO_OBSERVER
    """What the core counts for metrics (:mod:`oauth_server.metrics` in the server)."""

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
    settings: Settings,
    storage: Storage,
    clock: Clock,
    *,
    audit: AuditRecorder = NO_AUDIT,
    voider: TokenVoider | None = None,
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
        voider=voider,
    )


def build_token_codec(settings: Settings, clock: Clock) -> TokenCodec:
    """The codec of opaque tokens: its checksum key derived from the secret key, and the
    longest lifetime of each kind (past which a legacy-format token is refused unread)."""
    return TokenCodec(
        load_secret_key(settings),
        clock=clock,
        legacy_max_age={
            "access_token": max_token_age(settings),
            "refresh_token": settings.refresh_token_max_ttl,
            "authorization_code": settings.authorization_code_ttl,
        },
        accept_legacy=settings.accept_legacy_tokens,
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


SECRET_KEY_REQUIRED = (
    "OAUTH_SERVER_SECRET_KEY must be set in production (or OAUTH_SERVER_SECRET_KEY_FILE name "
    "a file that holds it)"
)
MIN_SECRET_KEY_LENGTH = 32

SecretKeyOrigin = Literal["setting", "file", "development file"]


@dataclass(frozen=True, slots=True)
class SecretKeySource:
    """Where the secret key comes from, read without creating anything.

    ``setting``: ``OAUTH_SERVER_SECRET_KEY``; ``file``: an ``OAUTH_SERVER_SECRET_KEY_FILE``
    that was configured (a mounted secret, say); ``development file``: the default file
    that development generates. ``value`` is ``None`` when the file cannot be read, and
    ``problem`` then says why."""

    origin: SecretKeyOrigin
    path: Path | None
    value: bytes | None = field(default=None, repr=False)
    problem: str | None = None


def secret_key_source(settings: Settings) -> SecretKeySource:
    """The secret key's origin and value as configured; reads, never writes."""
    if settings.secret_key is not None:
        return SecretKeySource("setting", None, settings.secret_key.get_secret_value().encode())
    path = settings.secret_key_file
    origin: SecretKeyOrigin = (
        "file" if "secret_key_file" in settings.model_fields_set else "development file"
    )
    try:
        return SecretKeySource(origin, path, path.read_text(encoding="utf-8").strip().encode())
    except FileNotFoundError:
        return SecretKeySource(origin, path, problem=f"the secret key file {path} does not exist")
    except (OSError, UnicodeDecodeError) as exc:
        return SecretKeySource(
            origin, path, problem=f"cannot read the secret key file {path}: {exc}"
        )


def load_secret_key(settings: Settings) -> bytes:
    """The configured secret: ``OAUTH_SERVER_SECRET_KEY``, else the contents of
    ``OAUTH_SERVER_SECRET_KEY_FILE``. Production never generates one, and takes a file only
    when it was configured; development generates one once into ``secret_key_file``.

    Here, in the composition root, so that the key ring (oauth/keys.py) reads no settings and
    writes no files: it is given the secret."""
    source = secret_key_source(settings)
    if source.origin == "setting" and source.value is not None:
        return source.value
    if settings.env == "production":
        if source.origin != "file":
            raise KeyError_(SECRET_KEY_REQUIRED)
        if source.value is None:
            raise KeyError_(f"{source.problem} (OAUTH_SERVER_SECRET_KEY_FILE)")
        if len(source.value) < MIN_SECRET_KEY_LENGTH:
            raise KeyError_(
                f"the secret key in {source.path} must be at least {MIN_SECRET_KEY_LENGTH} "
                "characters"
            )
        return source.value
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
        registrations_per_address=settings.rate_limit_registrations_per_address,
    )


_REDIRECT_KINDS = frozenset({"https", "http", "private-use"})


def registration_policy(settings: Settings) -> RegistrationPolicy:
    """The dynamic registration policy from the settings; :class:`ConfigError` naming the
    variable when a value is not one the server knows."""

    def problem(name: str, message: str) -> ConfigError:
        return ConfigError(f"OAUTH_SERVER_REGISTRATION_{name.upper()}: {message}")

    grants = frozenset(settings.registration_list("grant_types"))
    if not grants or not grants <= SUPPORTED_GRANT_TYPES:
        raise problem("grant_types", f"must be among {', '.join(sorted(SUPPORTED_GRANT_TYPES))}")
    methods = frozenset(settings.registration_list("auth_methods"))
    if not methods or not methods <= SUPPORTED_AUTH_METHODS:
        raise problem("auth_methods", f"must be among {', '.join(sorted(SUPPORTED_AUTH_METHODS))}")
    schemes = frozenset(settings.registration_list("redirect_uri_schemes"))
    for scheme in schemes - _REDIRECT_KINDS:
        if "." not in scheme or scheme != scheme.lower():
            raise problem(
                "redirect_uri_schemes",
                f"{scheme!r} is neither https, http, private-use nor a reverse-DNS scheme",
            )
    hosts = settings.registration_list("redirect_uri_hosts")
    for host in hosts:
        name = host.removeprefix("*.")
        if not name or "*" in name or "/" in name or ":" in name or name != name.lower():
            raise problem("redirect_uri_hosts", f"{host!r} is not a lower-case host or *.host")
    try:
        scopes = frozenset(parse_scope(" ".join(settings.registration_list("scopes"))))
    except InvalidScope as exc:
        raise problem("scopes", exc.description or "malformed") from None
    unknown = scopes - set(KNOWN_SCOPES)
    if unknown:
        raise problem("scopes", f"unknown scope {sorted(unknown)[0]}")
    return RegistrationPolicy(
        grant_types=grants,
        redirect_uri_schemes=schemes,
        redirect_uri_hosts=hosts,
        scopes=scopes,
        auth_methods=frozenset(m for m in SUPPORTED_AUTH_METHODS if m in methods),
    )


def build_services(
    settings: Settings,
    *,
    storage: Storage | None = None,
    clock: Clock | None = None,
    observer: Observer = NO_OBSERVER,
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
            observer=observer,
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
    codec = build_token_codec(settings, clock)
    opaque_verifier = OpaqueTokenVerifier(
        storage.tokens,
        codec=codec,
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
        codec=codec,
        refresh_idle_ttl=settings.refresh_token_idle_ttl,
        refresh_max_ttl=settings.refresh_token_max_ttl,
        refresh_reuse_grace=settings.refresh_reuse_grace,
        audit=audit,
        observer=observer,
    )
    grants = default_grants(default_resource=resource, signin=signin_grants)
    ttl = settings.access_token_ttl
    id_tokens = IdTokenIssuer(keys.ring, issuer=issuer, ttl=settings.id_token_ttl)
    tokens = TokenService(
        {
            "jwt": JwtAccessTokenIssuer(keys.ring, issuer=issuer, clock=clock, ttl=ttl),
            "opaque": OpaqueTokenIssuer(storage.tokens, codec=codec, clock=clock, ttl=ttl),
        },
        id_tokens=GrantIdTokens(id_tokens, clock=clock),
    )
    resource_metadata = f"{issuer}{PROTECTED_RESOURCE_PATH}"
    id_token_hints = IdTokenVerifier(keys, issuer=issuer, clock=clock)
    secret = load_secret_key(settings)
    signin = SignIn(
        storage,
        issuer=issuer,
        clock=clock,
        secret=secret,
        codec=codec,
        code_ttl=settings.authorization_code_ttl,
        session_ttl=settings.session_ttl,
        interaction_ttl=settings.interaction_ttl,
        audit=audit,
        observer=observer,
    )
    registry = ClientRegistry(
        storage,
        clock=clock,
        directory=directory,
        revoked_clients=revoked_clients,
        max_token_age=max_token_age(settings),
        audit=audit,
    )
    initial_tokens = InitialAccessTokens(storage.registrations, clock=clock, audit=audit)
    registration = (
        None
        if settings.registration == "off"
        else RegistrationEndpoint(
            storage=storage,
            registry=registry,
            initial_tokens=initial_tokens,
            policy=registration_policy(settings),
            mode=settings.registration,
            issuer=issuer,
            clock=clock,
            limiter=limiter,
        )
    )
    accounts = build_accounts(settings, storage, clock, audit=audit, voider=voider)
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
            observer=observer,
        ),
        introspection=IntrospectionEndpoint(
            authenticator=authenticator,
            verifier=verifier,
            limiter=limiter,
            observer=observer,
        ),
        revocation=RevocationEndpoint(
            authenticator=authenticator,
            jwt_verifier=jwt_verifier,
            opaque_verifier=opaque_verifier,
            storage=storage,
            codec=codec,
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
        id_token_hints=id_token_hints,
        userinfo=UserinfoEndpoint(
            verifier=verifier, users=storage.users, clients=directory, limiter=limiter
        ),
        sync=sync,
        purger=build_purger(settings, storage, keys, clock),
        as_metadata=orjson.dumps(
            authorization_server_metadata(
                issuer=issuer,
                grant_types=sorted(grants),
                scopes=KNOWN_SCOPES,
                registration_endpoint=None
                if registration is None
                else f"{issuer}{REGISTRATION_PATH}",
            )
        ),
        prm_metadata=orjson.dumps(
            protected_resource_metadata(
                resource=resource, issuer=issuer, scopes=SCOPES, name="Restaurants API"
            )
        ),
        accounts=accounts,
        account_access=AccountAccess(
            accounts=accounts,
            clients=storage.clients,
            consents=storage.consents,
            refresh_tokens=storage.refresh_tokens,
            sessions=storage.sessions,
            clock=clock,
            audit=audit,
            voider=voider,
        ),
        signin=signin,
        codec=codec,
        authorize=AuthorizationEndpoint(
            clients=directory, signin=signin, default_resource=resource, hints=id_token_hints
        ),
        end_session=EndSession(
            storage,
            clients=directory,
            signin=signin,
            hints=id_token_hints,
            voider=voider,
            clock=clock,
            secret=secret,
            audit=audit,
        ),
        observer=observer,
        initial_tokens=initial_tokens,
        registration=registration,
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
