"""One ``Settings`` object, read from ``OAUTH_SERVER_*`` environment variables once, at start-up.

Every field carries its documentation; the README's configuration table is generated from the
same text (``oauth-server config``). Development defaults are convenient and loud; production
refuses the ones that are unsafe: the self-check (:mod:`oauth_server.selfcheck`, ``oauth-server
check``) judges the settings and the stored data, and ``serve`` runs it first in production.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import unquote_plus, urlsplit, urlunsplit

import limits
from pydantic import AfterValidator, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from oauth_server.addresses import TrustedProxies
from oauth_server.algorithms import SigningAlg

__all__ = [
    "ConfigError",
    "Environment",
    "Settings",
    "load_settings",
    "redact_url",
    "settings_table",
]

Environment = Literal["development", "production"]


class ConfigError(Exception):
    """The configuration is invalid; the message says which variable and why."""


_PASSWORD_PARAMETERS = frozenset({"password", "passwd", "pass"})


def redact_url(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***`` — the one way a database or Redis
    URL is shown (banner, logs, error messages): ``postgresql://app:***@db/oauth``. A password
    given as a query parameter (``?password=…``) is hidden too."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    userinfo, at, hostport = parts.netloc.rpartition("@")
    netloc = parts.netloc
    if at and ":" in userinfo:
        netloc = f"{userinfo.partition(':')[0]}:***@{hostport}"
    query = "&".join(
        f"{name}=***" if unquote_plus(name).lower() in _PASSWORD_PARAMETERS else field
        for field in parts.query.split("&")
        for name in (field.partition("=")[0],)
    )
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def _no_trailing_slash(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an absolute http(s) URL such as https://auth.example.com")
    if parts.query or parts.fragment:
        # RFC 8414 §2: the issuer has no query or fragment component.
        raise ValueError("must not contain a query or fragment (RFC 8414 §2)")
    return value.rstrip("/")


class Settings(BaseSettings):
    """Server configuration. Each field is read from ``OAUTH_SERVER_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix="OAUTH_SERVER_",
        extra="ignore",
        frozen=True,
        validate_default=True,
        use_attribute_docstrings=True,
    )

    env: Environment = "development"
    """``development`` seeds the demo client, user and restaurants; ``production`` runs the
    self-check (``oauth-server check``) at start and refuses to serve, before writing anything
    to the database, on any critical finding (non-https issuer, no secret key, demo data on,
    demo client or user present, signing keys that do not decrypt, password hashing below the
    OWASP minimum, …), printing every one at once."""

    host: str = "127.0.0.1"
    """Interface to listen on."""

    port: Annotated[int, Field(ge=1, le=65535)] = 8889
    """TCP port to listen on."""

    workers: Annotated[int, Field(ge=1, le=64)] = 1
    """Number of server processes (they share nothing but the database)."""

    issuer: Annotated[str | None, AfterValidator(_no_trailing_slash)] = None
    """Public base URL of the server, used as the token issuer and in metadata; the start-up
    banner prints it first. Must be https in production. Defaults to
    ``http://localhost:<port>`` when the host is a loopback or wildcard address (`127.0.0.1`,
    `::1`, `0.0.0.0`, `::`), else ``http://<host>:<port>``."""

    database_url: Annotated[str, Field(repr=False)] = "sqlite:///var/oauth_server.db"
    """``sqlite:///path`` (default, WAL mode; a new file is created readable by its owner
    only, in a folder created likewise) or ``postgresql://user:password@host/db`` (asyncpg).
    Its password is shown as `***` wherever the URL is printed or logged."""

    database_pool_size: Annotated[int, Field(ge=1, le=200)] = 20
    """Most database connections a server process holds, on either backend: a request that
    finds them all busy waits up to 3 s for one, then gets 503. The change feed, purge, key
    schedule and audit writer use the same pool; SQLite's token batch writer holds 2 more of
    its own. Size PostgreSQL's `max_connections` as this times the processes of every
    instance, plus 2 per CLI command running."""

    access_token_ttl: Annotated[int, Field(ge=60, le=86_400)] = 3600
    """Lifetime of access tokens in seconds (``expires_in``)."""

    id_token_ttl: Annotated[int, Field(ge=60, le=86_400)] = 300
    """Lifetime in seconds of OpenID Connect ID tokens (``exp - iat``). An ID token states one
    sign-in, which the client validates once, on receipt (OIDC Core §3.1.3.7), so it need not
    live long; signing keys stay published for the longer of this and the access-token
    lifetime."""

    authorization_code_ttl: Annotated[int, Field(ge=1, le=600)] = 60
    """Lifetime of authorization codes in seconds (RFC 6749 §4.1.2: "a maximum authorization
    code lifetime of 10 minutes is RECOMMENDED"; at most 600). Codes are single use."""

    refresh_token_idle_ttl: Annotated[int, Field(ge=60, le=366 * 86_400)] = 14 * 86_400
    """Seconds a refresh token stays valid unused: each rotation issues a successor with a
    fresh idle lifetime, never past the family's absolute one."""

    refresh_token_max_ttl: Annotated[int, Field(ge=60, le=3 * 366 * 86_400)] = 90 * 86_400
    """Absolute lifetime in seconds of a refresh-token family (one sign-in's grant): after it
    the user signs in again, however often the tokens were rotated."""

    accept_legacy_tokens: bool = True
    """Accept opaque access tokens, refresh tokens and authorization codes of the format before
    the checksummed one (59 characters, no ``pos_`` prefix), looked up in the database as
    before. Turn off once every such token has expired (at most `refresh_token_max_ttl` after
    the upgrade): then a value of that shape is refused without a database read."""

    refresh_reuse_grace: Annotated[int, Field(ge=0, le=60)] = 0
    """Seconds after a rotation during which presenting the just-rotated refresh token once
    more (a client that lost the response) gets a fresh pair and revokes the unused successor,
    instead of revoking the whole family as reuse. 0: any reuse revokes the family."""

    session_ttl: Annotated[int, Field(ge=60, le=366 * 86_400)] = 7 * 86_400
    """Lifetime in seconds of a browser session (the sign-in cookie) from login; the session
    record is in the database, so it survives restarts and is shared by every instance."""

    interaction_ttl: Annotated[int, Field(ge=60, le=86_400)] = 1800
    """Seconds a stored authorize request waits for the login and consent pages."""

    resource: Annotated[str | None, AfterValidator(_no_trailing_slash)] = None
    """Resource identifier (RFC 8707) of the restaurants API: the ``aud`` of its tokens and the
    ``resource`` of its RFC 9728 metadata. Defaults to the issuer."""

    secret_key: SecretStr | None = None
    """Secret (at least 32 characters) from which the key encrypting signing keys at rest is
    derived. Production needs it, or ``secret_key_file`` set; development generates one in
    ``secret_key_file``."""

    secret_key_file: Path = Path("var/secret_key")
    """A file holding the secret key, used when ``secret_key`` is not set: in production only
    when this variable is set (a mounted secret such as `/run/secrets/oauth_secret_key`,
    readable by its owner only), never generated; development generates its key here."""

    signing_alg: SigningAlg = "ES256"
    """Algorithm of newly generated signing keys (`EdDSA` is the pre-RFC 9864 name of
    `Ed25519`, for verifiers that know only that)."""

    key_rotation_interval: Annotated[int, Field(ge=0)] = 30 * 86_400
    """Seconds each signing key signs before the next takes over; 0 turns automatic rotation
    off (``oauth-server keys rotate`` still works)."""

    key_publish_lead: Annotated[int, Field(ge=0, le=30 * 86_400)] = 900
    """Seconds a new key sits in the JWKS before it signs, so that resource servers that cache
    the JWKS know it before they meet it."""

    jwt_leeway: Annotated[int, Field(ge=0, le=300)] = 30
    """Clock skew tolerated when checking ``exp``/``nbf`` of JWTs, in seconds."""

    max_body_bytes: Annotated[int, Field(ge=1024, le=10_485_760)] = 65_536
    """Largest request body accepted; larger bodies get 413 before any parsing."""

    max_url_bytes: Annotated[int, Field(ge=256, le=65_536)] = 8192
    """Longest request target (path and query) accepted; longer gets 414."""

    max_header_bytes: Annotated[int, Field(ge=1024, le=1_048_576)] = 16_384
    """Largest total size of a request's header fields; larger gets 431. The raw head is counted
    as it arrives, so a field that never ends is refused as soon as the head outgrows this and
    ``MAX_URL_BYTES`` together."""

    max_headers: Annotated[int, Field(ge=8, le=1000)] = 100
    """Most header fields a request may carry; more gets 431."""

    header_timeout: Annotated[float, Field(gt=0, le=300)] = 10.0
    """Seconds a client has to send a request's head (from connecting, or from the first byte
    after the previous answer); slower clients get 408 and are disconnected."""

    body_timeout: Annotated[float, Field(gt=0, le=600)] = 15.0
    """Seconds a client has to send a request's body once its head arrived; slower gets 408."""

    keep_alive_timeout: Annotated[int, Field(ge=1, le=600)] = 5
    """Seconds an idle keep-alive connection stays open. A request answered before its body
    arrived ends its connection: what the client still sends is dropped for at most this long,
    then the connection closes."""

    max_connections: Annotated[int, Field(ge=1)] = 2048
    """Concurrent connections (and requests) per process; a request on a connection beyond
    them gets 503 (`Retry-After: 1`) and that connection closes."""

    shutdown_timeout: Annotated[int, Field(ge=1, le=600)] = 15
    """Seconds SIGTERM lets the requests in flight finish; those still unanswered then get 503
    and the process exits."""

    demo_data: bool | None = None
    """Seed the demo client ``admin``/``getroot``, five restaurants and the demo user ``demo``
    (a random password, printed once in the start-up banner) on first start. Defaults to
    true in development and false in production."""

    cache_sync_interval: Annotated[float, Field(gt=0, le=60)] = 1.0
    """Seconds between polls of the change feed: the longest a change made by another process
    (a deleted client, a rotated secret) can go unnoticed by this one."""

    redis_url: Annotated[str | None, Field(repr=False)] = None
    """`redis://host:port/db` to share rate-limit counters between instances (default: each
    process counts alone, in memory)."""

    redis_key_prefix: str = "oauth-server"
    """Prefix of this deployment's keys in Redis."""

    rate_limits: bool = True
    """Enforce the rate limits below."""

    rate_limit_auth_failures_per_client_address: str = "20/minute"
    """Failed client authentications per client id from one address before that client id's
    attempts from that address get 429 (RFC 6749 §2.3.1 brute-force protection; the correct
    secret is refused too until the window ends). The client keeps working from its other
    addresses, so nobody can lock out a client they do not share an address with."""

    rate_limit_auth_failures_per_client: str = "1000/minute"
    """Failed client authentications per client id from all addresses together before every
    attempt for it gets 429: a ceiling that only a guessing attack spread over many addresses
    reaches (it then locks the client out everywhere for the window)."""

    rate_limit_auth_failures_per_address: str = "100/minute"
    """Failed client authentications per client address, across client ids, before its
    attempts get 429. Per-address limits count an IPv6 address by its /64."""

    rate_limit_login_failures_per_username: str = "10/minute"
    """Failed sign-ins on the login page per username before further attempts for it get the
    "too many attempts" page. Unknown usernames are counted the same, so the lockout never
    tells whether an account exists; the right password is refused too until the window
    ends."""

    rate_limit_login_failures_per_address: str = "100/minute"
    """Failed sign-ins on the login page per client address, across usernames (credential
    stuffing), before its attempts get the "too many attempts" page."""

    rate_limit_bearer_failures_per_address: str = "100/minute"
    """Refused bearer tokens (unknown, expired, revoked, forged) presented to the restaurants
    API per client address before its bearer requests get 429 without the token being looked
    at; far above what a client retrying with an expired token sends."""

    rate_limit_tokens_per_client: str = "1200000/minute"
    """Token requests per client (a runaway-client guard, far above any legitimate rate)."""

    rate_limit_introspections_per_client: str = "1200000/minute"
    """Introspection requests per calling client."""

    trusted_proxies: str = ""
    """Comma-separated addresses or networks (`10.0.0.0/8`) of reverse proxies whose
    `X-Forwarded-For`/`-Proto` headers are believed (empty: none; the client address is the
    peer's). From a trusted peer, the client is the rightmost untrusted hop; a hop that is not
    an IP address makes the header ignored."""

    purge_interval: Annotated[float, Field(ge=0, le=86_400)] = 300.0
    """Seconds between background purges of expired opaque tokens, expired revocations,
    change-feed entries older than an hour (or the access-token lifetime, if longer),
    signing keys a day past their verification window and expired sign-in rows (codes,
    refresh tokens, sessions, interactions), in small batches (each instance
    purges, at a slightly jittered time); 0 turns it off (``oauth-server db purge`` still
    runs one pass)."""

    audit_token_issued: bool = False
    """Record a `token_issued` event (client, token id, scope, address) in the audit trail for
    every access token. Off by default: it is the one audit event on the hot path (see
    "Audit trail" for its measured cost). Security events are always recorded."""

    password_hash_time_cost: Annotated[int, Field(ge=1, le=100)] = 2
    """argon2id time cost (passes over memory) of user password hashes. The defaults are the
    OWASP Password Storage Cheat Sheet's argon2id baseline (19 MiB, 2 passes, 1 lane).
    Stored hashes with other parameters are rehashed at the user's next successful login."""

    password_hash_memory_cost: Annotated[int, Field(ge=8, le=4_194_304)] = 19_456
    """argon2id memory cost of user password hashes, in KiB (each hash in progress holds
    this much memory). Production refuses less than OWASP's minimum: 7168 KiB, and memory
    cost times time cost at least 35840."""

    password_hash_parallelism: Annotated[int, Field(ge=1, le=64)] = 1
    """argon2id lanes (threads) per user password hash."""

    password_hash_concurrency: Annotated[int, Field(ge=1, le=64)] = 2
    """User password hashes computed at once per process, off the event loop, in a thread
    pool of this size; more logins wait their turn. At most concurrency times parallelism
    threads hash at once: keep that below the core count, so the event loop (token
    issuance) keeps a core of its own."""

    registration: Literal["off", "initial-token", "open"] = "off"
    """Dynamic client registration (RFC 7591) and management (RFC 7592) at
    `/oauth/register`: `off` (no such endpoint, none advertised); `initial-token`, where each
    registration presents an initial access token made by `oauth-server registration
    create-token`; or `open`, where anyone who can reach the server registers clients within
    the policy below and the rate limit (`rate_limit_registrations_per_address`)."""

    registration_grant_types: str = "authorization_code,refresh_token"
    """Grant types a dynamically registered client may have (comma- or space-separated;
    among `authorization_code`, `refresh_token`, `client_credentials`)."""

    registration_redirect_uri_schemes: str = "https,http,private-use"
    """Kinds of redirect URIs a dynamically registered client may register: `https`; `http`,
    which is only ever allowed to a loopback host (RFC 8252 §7.3); `private-use` for any
    reverse-DNS scheme of a native app (`com.example.app:/cb`, RFC 8252 §7.1), or such
    schemes by name. Every redirect URI also obeys the rules of all clients (exact, no
    fragment, no wildcard…)."""

    registration_redirect_uri_hosts: str = ""
    """Hosts an `https` redirect URI of a dynamically registered client may name
    (comma-separated): `app.example.com` exactly, `*.example.com` any host under it. Empty
    allows any host — and so lets whoever may register choose where the authorization
    endpoint sends its responses, error responses included (RFC 9700 §4.11.2): set it for
    open registration."""

    registration_scopes: str = "openid profile email offline_access"
    """Scopes a dynamically registered client may register (space- or comma-separated); one
    that registers no `scope` gets all of them its grant types can use. A request for any
    other scope is refused, never narrowed."""

    registration_auth_methods: str = "client_secret_basic,client_secret_post,none"
    """Token endpoint authentication methods a dynamically registered client may choose
    (`none` makes a public client, which must use PKCE)."""

    registration_max_clients_per_token: Annotated[int, Field(ge=1, le=100_000)] = 1
    """How many clients an initial access token registers when `registration create-token`
    is given no `--max-clients`."""

    rate_limit_registrations_per_address: str = "20/hour"
    """Requests to the registration endpoints (registration and management) per client
    address before its requests there get 429; each is counted before its token or metadata
    is read."""

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """Log level of the server and its request log."""

    log_format: Literal["json", "text"] | None = None
    """`json`: one JSON object per log line (`ts`, `level`, `logger`, `message` and the
    line's fields), for a log pipeline; `text`: one readable line. Defaults to text in
    development and json in production."""

    access_log: bool = False
    """Write one line per request (request id, method, route template, status, latency,
    client id, user id, error code; see "Logs"). Off by default: it costs throughput (see
    "Logs" for the measured cost)."""

    metrics_allowed_addresses: str = "127.0.0.0/8,::1"
    """Comma-separated addresses or networks allowed to read `/metrics` (the client address,
    after `TRUSTED_PROXIES`); others get 403. Empty: no address. Default: loopback only."""

    metrics_token_sha256: Annotated[str | None, Field(repr=False)] = None
    """Hex SHA-256 of a bearer secret that `/metrics` requires as well (`Authorization: Bearer
    <secret>`; missing or wrong: 401). Only the hash is configured, so the secret is in no
    environment listing; `printf %s "$SECRET" | sha256sum` computes it."""

    metrics_token_file: Path | None = None
    """A file holding the `/metrics` bearer secret (instead of `METRICS_TOKEN_SHA256`; for
    Prometheus' `authorization.credentials_file` on the same host). Read once at start."""

    @model_validator(mode="after")
    def _check_secret_key(self) -> Settings:
        if self.secret_key is not None and len(self.secret_key.get_secret_value()) < 32:
            raise ValueError("OAUTH_SERVER_SECRET_KEY must be at least 32 characters")
        return self

    @model_validator(mode="after")
    def _check_rate_limits(self) -> Settings:
        for name in (
            "rate_limit_auth_failures_per_client_address",
            "rate_limit_auth_failures_per_client",
            "rate_limit_auth_failures_per_address",
            "rate_limit_bearer_failures_per_address",
            "rate_limit_tokens_per_client",
            "rate_limit_introspections_per_client",
            "rate_limit_login_failures_per_username",
            "rate_limit_login_failures_per_address",
            "rate_limit_registrations_per_address",
        ):
            value = getattr(self, name)
            try:
                # The limits library's syntax; the rate limiter (oauth/ratelimit.py) parses the
                # same strings with it. Settings import no part of the core.
                limits.parse(value)
            except ValueError as exc:
                raise ValueError(
                    f"OAUTH_SERVER_{name.upper()}: {value!r} is not a rate limit such as "
                    f"'20/minute': {exc}"
                ) from None
        if self.redis_url is not None and not self.redis_url.startswith(("redis://", "rediss://")):
            raise ValueError("OAUTH_SERVER_REDIS_URL must start with redis:// or rediss://")
        try:
            TrustedProxies(self.trusted_proxies)
        except ValueError as exc:
            raise ValueError(f"OAUTH_SERVER_TRUSTED_PROXIES: {exc}") from None
        return self

    @model_validator(mode="after")
    def _check_metrics_access(self) -> Settings:
        try:
            TrustedProxies(self.metrics_allowed_addresses)
        except ValueError as exc:
            raise ValueError(f"OAUTH_SERVER_METRICS_ALLOWED_ADDRESSES: {exc}") from None
        digest = self.metrics_token_sha256
        if digest is not None and re.fullmatch(r"[0-9a-fA-F]{64}", digest) is None:
            raise ValueError("OAUTH_SERVER_METRICS_TOKEN_SHA256 must be 64 hex digits")
        if digest is not None and self.metrics_token_file is not None:
            raise ValueError(
                "set only one of OAUTH_SERVER_METRICS_TOKEN_SHA256 and _METRICS_TOKEN_FILE"
            )
        return self

    @model_validator(mode="after")
    def _check_refresh_lifetimes(self) -> Settings:
        if self.refresh_token_idle_ttl > self.refresh_token_max_ttl:
            raise ValueError(
                "OAUTH_SERVER_REFRESH_TOKEN_IDLE_TTL must not exceed "
                "OAUTH_SERVER_REFRESH_TOKEN_MAX_TTL"
            )
        return self

    @model_validator(mode="after")
    def _check_password_hashing(self) -> Settings:
        if self.password_hash_memory_cost < 8 * self.password_hash_parallelism:
            # argon2 needs 8 KiB per lane.
            raise ValueError(
                "OAUTH_SERVER_PASSWORD_HASH_MEMORY_COST must be at least 8 KiB for each of the "
                "OAUTH_SERVER_PASSWORD_HASH_PARALLELISM lanes"
            )
        return self

    @model_validator(mode="after")
    def _check_database_url(self) -> Settings:
        scheme = self.database_url.split(":", 1)[0].split("+", 1)[0]
        if scheme not in ("sqlite", "postgresql", "postgres"):
            raise ValueError(
                "OAUTH_SERVER_DATABASE_URL must start with sqlite:/// or postgresql://"
            )
        return self

    def registration_list(self, name: str) -> tuple[str, ...]:
        """A list setting of the registration policy: its comma- or space-separated values."""
        value: str = getattr(self, f"registration_{name}")
        return tuple(dict.fromkeys(value.replace(",", " ").split()))

    @property
    def public_issuer(self) -> str:
        """The issuer identifier, exactly as it appears in tokens and metadata."""
        if self.issuer:
            return self.issuer
        return f"http://{_issuer_host(self.host)}:{self.port}"

    @property
    def resource_id(self) -> str:
        """The restaurants API's resource identifier."""
        return self.resource or self.public_issuer

    @property
    def effective_log_format(self) -> Literal["json", "text"]:
        if self.log_format is not None:
            return self.log_format
        return "json" if self.env == "production" else "text"

    @property
    def seed_demo_data(self) -> bool:
        return self.demo_data if self.demo_data is not None else self.env == "development"


def _issuer_host(host: str) -> str:
    """The host of the default issuer: ``localhost`` for an address that is this machine's
    only (loopback) or all of its addresses (wildcard) — the name a local client uses;
    another name or address as given, an IPv6 address in brackets (RFC 3986 §3.2.2)."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host
    if address.is_loopback or address.is_unspecified:
        return "localhost"
    return f"[{address}]" if address.version == 6 else str(address)


def settings_table() -> str:
    """The configuration reference as a Markdown table (the README embeds it verbatim)."""
    rows = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        shown = (
            ""
            if default is None
            else f"`{str(default).lower() if isinstance(default, bool) else default}`"
        )
        description = " ".join((field.description or "").replace("``", "`").split())
        rows.append(f"| `OAUTH_SERVER_{name.upper()}` | {shown} | {description} |")
    return "\n".join(rows)


def load_settings(**overrides: object) -> Settings:
    """Read the settings from the environment, turning validation errors into one clear message."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"]) or "settings"
            name = f"OAUTH_SERVER_{field.upper()}" if error["loc"] else field
            lines.append(f"{name}: {error['msg']}")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None
