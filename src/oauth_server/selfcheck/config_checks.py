"""Checks of the settings alone (no database)."""

from __future__ import annotations

import ipaddress
import math
from collections import Counter
from urllib.parse import urlsplit

from oauth_server.selfcheck.registry import Deployment, Finding, check, rule
from oauth_server.services import MIN_SECRET_KEY_LENGTH, SECRET_KEY_REQUIRED, secret_key_source
from oauth_server.storage.sql.engine import sqlite_file

__all__ = ["estimated_entropy_bits"]

DAY = 86_400

ENV_DEVELOPMENT = rule(
    "env.development",
    "critical",
    reference="project rule",
    setting="OAUTH_SERVER_ENV",
    fix="set OAUTH_SERVER_ENV=production on anything that faces a network",
    summary="Development mode (seeds demo data, generates its own secret key, checks nothing "
    "at start).",
)


@check("environment", rules=[ENV_DEVELOPMENT])
async def environment(deployment: Deployment) -> list[Finding]:
    if deployment.settings.env == "production":
        return []
    return [ENV_DEVELOPMENT.finding("OAUTH_SERVER_ENV is development")]


ISSUER_HTTPS = rule(
    "issuer.https",
    "critical",
    reference="RFC 8414 §2; RFC 6749 §3.1, §3.2",
    setting="OAUTH_SERVER_ISSUER",
    fix="set OAUTH_SERVER_ISSUER to the public https URL clients use "
    "(https://auth.example.com), served through TLS",
    summary="The issuer is not an https URL.",
)
RESOURCE_HTTPS = rule(
    "resource.https",
    "warning",
    reference="RFC 9728 §2; RFC 8707 §2",
    setting="OAUTH_SERVER_RESOURCE",
    fix="set OAUTH_SERVER_RESOURCE to the API's https URL, or leave it unset (the issuer)",
    summary="The restaurants API's resource identifier is not an https URL.",
)


@check("issuer", rules=[ISSUER_HTTPS, RESOURCE_HTTPS])
async def issuer(deployment: Deployment) -> list[Finding]:
    settings = deployment.settings
    findings = []
    if urlsplit(settings.public_issuer).scheme != "https":
        findings.append(
            ISSUER_HTTPS.finding(
                "OAUTH_SERVER_ISSUER must be an https URL in production "
                f"(it is {settings.public_issuer!r})"
            )
        )
    if settings.resource is not None and urlsplit(settings.resource).scheme != "https":
        findings.append(
            RESOURCE_HTTPS.finding(f"the resource identifier {settings.resource!r} is not https")
        )
    return findings


DEMO_DATA = rule(
    "demo-data.enabled",
    "critical",
    reference="project rule",
    setting="OAUTH_SERVER_DEMO_DATA",
    fix="set OAUTH_SERVER_DEMO_DATA=false (production's default)",
    summary="Demo data seeding is on (the client admin/getroot, whose secret is published).",
)


@check("demo data setting", rules=[DEMO_DATA])
async def demo_data(deployment: Deployment) -> list[Finding]:
    settings = deployment.settings
    if not settings.seed_demo_data:
        return []
    if settings.demo_data:
        return [DEMO_DATA.finding("OAUTH_SERVER_DEMO_DATA must not be enabled in production")]
    return [DEMO_DATA.finding("demo data is seeded (the development default)")]


SECRET_ORIGIN = rule(
    "secret-key.origin",
    "critical",
    reference="project rule (signing keys encrypted at rest)",
    setting="OAUTH_SERVER_SECRET_KEY",
    fix="set OAUTH_SERVER_SECRET_KEY, or OAUTH_SERVER_SECRET_KEY_FILE to a mounted secret "
    "file; generate one with `python -c 'import secrets; print(secrets.token_urlsafe(48))'`",
    summary="No secret key, a secret key file that cannot be read, or the key development "
    "generated for itself.",
)
SECRET_WEAK = rule(
    "secret-key.weak",
    "critical",
    reference="project rule",
    setting="OAUTH_SERVER_SECRET_KEY",
    fix="replace it with a random one: `python -c 'import secrets; "
    "print(secrets.token_urlsafe(48))'` (then `oauth-server keys rotate --immediately`)",
    summary=f"The secret key is shorter than {MIN_SECRET_KEY_LENGTH} characters or made of "
    "fewer than 10 distinct characters (`changeme` repeated).",
)
SECRET_LOW_ENTROPY = rule(
    "secret-key.low-entropy",
    "warning",
    reference="project rule",
    setting="OAUTH_SERVER_SECRET_KEY",
    fix="replace it with a random one: `python -c 'import secrets; "
    "print(secrets.token_urlsafe(48))'`",
    summary="The secret key's characters carry an estimated fewer than 100 bits (a phrase, "
    "a short hex string).",
)
SECRET_TWICE = rule(
    "secret-key.both-set",
    "info",
    reference="project rule",
    setting="OAUTH_SERVER_SECRET_KEY_FILE",
    fix="unset one of OAUTH_SERVER_SECRET_KEY and OAUTH_SERVER_SECRET_KEY_FILE",
    summary="Both the secret key and a secret key file are set: the file is ignored.",
)

# Estimated from the secret's own character frequencies: a lower bound on nothing, but it
# tells `changeme…` and English phrases from random strings (token_urlsafe(48) gives ~320).
_LOW_ENTROPY_BITS = 100
_MIN_DISTINCT = 10


def estimated_entropy_bits(secret: str) -> float:
    """Shannon entropy of ``secret``'s characters times its length (a heuristic)."""
    if not secret:
        return 0.0
    counts = Counter(secret)
    total = len(secret)
    return -total * sum(n / total * math.log2(n / total) for n in counts.values())


@check("secret key", rules=[SECRET_ORIGIN, SECRET_WEAK, SECRET_LOW_ENTROPY, SECRET_TWICE])
async def secret_key(deployment: Deployment) -> list[Finding]:
    settings = deployment.settings
    source = secret_key_source(settings)
    findings = []
    if source.origin == "setting" and "secret_key_file" in settings.model_fields_set:
        findings.append(SECRET_TWICE.finding("OAUTH_SERVER_SECRET_KEY_FILE is ignored"))
    if source.origin == "development file":
        if settings.env == "production":
            return [SECRET_ORIGIN.finding(SECRET_KEY_REQUIRED)]
        return [
            SECRET_ORIGIN.finding(
                f"the secret key is development's own, generated into {source.path}"
            )
        ]
    if source.value is None:
        return [
            SECRET_ORIGIN.finding(
                f"{source.problem} (OAUTH_SERVER_SECRET_KEY_FILE)",
                setting="OAUTH_SERVER_SECRET_KEY_FILE",
            )
        ]
    if source.origin == "setting":
        where = setting = "OAUTH_SERVER_SECRET_KEY"
    else:
        where, setting = str(source.path), "OAUTH_SERVER_SECRET_KEY_FILE"
    secret = source.value.decode("utf-8", "replace")
    bits = estimated_entropy_bits(secret)
    if len(secret) < MIN_SECRET_KEY_LENGTH:
        findings.append(
            SECRET_WEAK.finding(
                f"the secret key in {where} has {len(secret)} characters, fewer than "
                f"{MIN_SECRET_KEY_LENGTH}",
                setting=setting,
            )
        )
    elif len(set(secret)) < _MIN_DISTINCT:
        findings.append(
            SECRET_WEAK.finding(
                f"the secret key in {where} is made of {len(set(secret))} distinct characters",
                setting=setting,
            )
        )
    elif bits < _LOW_ENTROPY_BITS:
        findings.append(
            SECRET_LOW_ENTROPY.finding(
                f"the secret key in {where} carries an estimated {bits:.0f} bits",
                setting=setting,
            )
        )
    return findings


PASSWORD_HASHING = rule(
    "password-hashing.weak",
    "critical",
    reference="OWASP Password Storage Cheat Sheet (argon2id)",
    setting="OAUTH_SERVER_PASSWORD_HASH_MEMORY_COST",
    fix="raise OAUTH_SERVER_PASSWORD_HASH_MEMORY_COST and _TIME_COST (defaults: 19456 KiB, 2)",
    summary="argon2id parameters below OWASP's minimum (7168 KiB, and memory times passes "
    "at least 35840).",
)


@check("password hashing", rules=[PASSWORD_HASHING])
async def password_hashing(deployment: Deployment) -> list[Finding]:
    memory = deployment.settings.password_hash_memory_cost
    passes = deployment.settings.password_hash_time_cost
    if memory >= 7168 and memory * passes >= 35_840:
        return []
    return [
        PASSWORD_HASHING.finding(
            "OAUTH_SERVER_PASSWORD_HASH_MEMORY_COST and _TIME_COST are below the OWASP "
            f"argon2id minimum (they are {memory} KiB and {passes}; the memory cost must "
            "be at least 7168 KiB, and the two multiplied at least 35840)"
        )
    ]


ROTATION_OFF = rule(
    "key-rotation.off",
    "warning",
    reference="project rule (NIST SP 800-57 Part 1 §5.3: cryptoperiods)",
    setting="OAUTH_SERVER_KEY_ROTATION_INTERVAL",
    fix="set OAUTH_SERVER_KEY_ROTATION_INTERVAL to at most 7776000 (90 days; default 30)",
    summary="Automatic signing-key rotation is off, or rotates less often than every 90 days.",
)
MAX_ROTATION_INTERVAL = 90 * DAY
EDDSA_NAME = rule(
    "signing-alg.deprecated-name",
    "info",
    reference="RFC 9864 §2",
    setting="OAUTH_SERVER_SIGNING_ALG",
    fix="use Ed25519 once every resource server knows that name",
    summary="New keys are announced as EdDSA, the name RFC 9864 deprecates for Ed25519.",
)


@check("key rotation setting", rules=[ROTATION_OFF, EDDSA_NAME])
async def key_rotation(deployment: Deployment) -> list[Finding]:
    settings = deployment.settings
    findings = []
    interval = settings.key_rotation_interval
    if interval == 0:
        findings.append(ROTATION_OFF.finding("automatic signing-key rotation is off"))
    elif interval > MAX_ROTATION_INTERVAL:
        findings.append(
            ROTATION_OFF.finding(
                f"signing keys rotate every {interval // DAY} days, more than "
                f"{MAX_ROTATION_INTERVAL // DAY}"
            )
        )
    if settings.signing_alg == "EdDSA":
        findings.append(EDDSA_NAME.finding("OAUTH_SERVER_SIGNING_ALG is EdDSA"))
    return findings


ACCESS_TOKEN_TTL = rule(
    "access-token.lifetime",
    "warning",
    reference="RFC 6819 §5.1.5.3; RFC 9700 §4.10",
    setting="OAUTH_SERVER_ACCESS_TOKEN_TTL",
    fix="set OAUTH_SERVER_ACCESS_TOKEN_TTL to at most 3600 (the default)",
    summary="Access tokens live longer than an hour: a stolen one works that long.",
)
ID_TOKEN_TTL = rule(
    "id-token.lifetime",
    "warning",
    reference="OIDC Core §3.1.3.7",
    setting="OAUTH_SERVER_ID_TOKEN_TTL",
    fix="set OAUTH_SERVER_ID_TOKEN_TTL to at most 3600 (default 300)",
    summary="ID tokens live longer than an hour (a client validates one once, on receipt).",
)
REFRESH_TTL = rule(
    "refresh-token.lifetime",
    "warning",
    reference="RFC 9700 §4.14.2",
    setting="OAUTH_SERVER_REFRESH_TOKEN_IDLE_TTL",
    fix="keep OAUTH_SERVER_REFRESH_TOKEN_IDLE_TTL at most 2592000 (30 days) and "
    "OAUTH_SERVER_REFRESH_TOKEN_MAX_TTL at most 31622400 (366 days)",
    summary="Refresh tokens stay valid unused for more than 30 days, or a sign-in's refresh "
    "family lives more than a year.",
)
REUSE_GRACE = rule(
    "refresh-token.reuse-grace",
    "info",
    reference="RFC 9700 §4.14.2",
    setting="OAUTH_SERVER_REFRESH_REUSE_GRACE",
    fix="set OAUTH_SERVER_REFRESH_REUSE_GRACE=0 unless clients lose rotation responses",
    summary="A just-rotated refresh token may be replayed once within the grace without "
    "revoking its family (rotation itself is always on).",
)
ACCESS_TTL_MAX = 3600
ID_TTL_MAX = 3600
REFRESH_IDLE_MAX = 30 * DAY
REFRESH_FAMILY_MAX = 366 * DAY


@check("token lifetimes", rules=[ACCESS_TOKEN_TTL, ID_TOKEN_TTL, REFRESH_TTL, REUSE_GRACE])
async def token_lifetimes(deployment: Deployment) -> list[Finding]:
    settings = deployment.settings
    findings = []
    if settings.access_token_ttl > ACCESS_TTL_MAX:
        findings.append(
            ACCESS_TOKEN_TTL.finding(
                f"access tokens live {settings.access_token_ttl} s, more than {ACCESS_TTL_MAX}"
            )
        )
    if settings.id_token_ttl > ID_TTL_MAX:
        findings.append(
            ID_TOKEN_TTL.finding(
                f"ID tokens live {settings.id_token_ttl} s, more than {ID_TTL_MAX}"
            )
        )
    if settings.refresh_token_idle_ttl > REFRESH_IDLE_MAX:
        findings.append(
            REFRESH_TTL.finding(
                f"refresh tokens stay valid unused for {settings.refresh_token_idle_ttl // DAY} "
                f"days, more than {REFRESH_IDLE_MAX // DAY}"
            )
        )
    if settings.refresh_token_max_ttl > REFRESH_FAMILY_MAX:
        findings.append(
            REFRESH_TTL.finding(
                f"a refresh-token family lives {settings.refresh_token_max_ttl // DAY} days, "
                f"more than {REFRESH_FAMILY_MAX // DAY}",
                setting="OAUTH_SERVER_REFRESH_TOKEN_MAX_TTL",
            )
        )
    if settings.refresh_reuse_grace > 0:
        findings.append(
            REUSE_GRACE.finding(
                f"a rotated refresh token may be presented again for "
                f"{settings.refresh_reuse_grace} s without revoking its family"
            )
        )
    return findings


RATE_LIMITS_OFF = rule(
    "rate-limits.off",
    "critical",
    reference="RFC 6749 §2.3.1",
    setting="OAUTH_SERVER_RATE_LIMITS",
    fix="set OAUTH_SERVER_RATE_LIMITS=true (the default)",
    summary="Rate limits are off: client secrets and user passwords can be guessed unthrottled.",
)
RATE_LIMITS_PER_PROCESS = rule(
    "rate-limits.per-process",
    "warning",
    reference="RFC 6749 §2.3.1",
    setting="OAUTH_SERVER_REDIS_URL",
    fix="set OAUTH_SERVER_REDIS_URL so that the worker processes share their counters",
    summary="Several workers without Redis: each counts alone, so every limit is that many "
    "times looser.",
)


@check("rate limits", rules=[RATE_LIMITS_OFF, RATE_LIMITS_PER_PROCESS])
async def rate_limits(deployment: Deployment) -> list[Finding]:
    settings = deployment.settings
    if not settings.rate_limits:
        return [RATE_LIMITS_OFF.finding("OAUTH_SERVER_RATE_LIMITS is false")]
    if settings.workers > 1 and settings.redis_url is None:
        return [
            RATE_LIMITS_PER_PROCESS.finding(
                f"{settings.workers} workers count rate limits each on its own"
            )
        ]
    return []


PROXIES_EVERYONE = rule(
    "trusted-proxies.everyone",
    "critical",
    reference="RFC 9700 §4.13",
    setting="OAUTH_SERVER_TRUSTED_PROXIES",
    fix="name only your reverse proxies' addresses in OAUTH_SERVER_TRUSTED_PROXIES",
    summary="Every peer is a trusted proxy (`0.0.0.0/0`, `::/0`): any client can choose the "
    "address its rate limits count.",
)
PROXIES_PUBLIC = rule(
    "trusted-proxies.public",
    "warning",
    reference="RFC 9700 §4.13",
    setting="OAUTH_SERVER_TRUSTED_PROXIES",
    fix="trust only the proxies' own (usually private) addresses",
    summary="A trusted proxy network is public and wider than one host's /24 (IPv4) or /48 (IPv6).",
)


@check("trusted proxies", rules=[PROXIES_EVERYONE, PROXIES_PUBLIC])
async def trusted_proxies(deployment: Deployment) -> list[Finding]:
    findings = []
    # The settings validated the list (TrustedProxies): every item parses.
    for item in (part.strip() for part in deployment.settings.trusted_proxies.split(",")):
        if not item:
            continue
        network = ipaddress.ip_network(item, strict=False)
        if network.prefixlen == 0:
            findings.append(PROXIES_EVERYONE.finding(f"{item} trusts every peer"))
        elif network.is_global and network.prefixlen < (24 if network.version == 4 else 48):
            findings.append(PROXIES_PUBLIC.finding(f"{item} is a wide public network"))
    return findings


SQLITE_WORKERS = rule(
    "database.sqlite-workers",
    "warning",
    reference="project rule",
    setting="OAUTH_SERVER_DATABASE_URL",
    fix="use PostgreSQL (OAUTH_SERVER_DATABASE_URL=postgresql://…) for several workers, or "
    "set OAUTH_SERVER_WORKERS=1",
    summary="SQLite with several worker processes: they queue for one write lock.",
)


@check("database backend", rules=[SQLITE_WORKERS])
async def database_backend(deployment: Deployment) -> list[Finding]:
    settings = deployment.settings
    if settings.workers > 1 and settings.database_url.startswith("sqlite"):
        where = sqlite_file(settings.database_url) or "in memory"
        return [SQLITE_WORKERS.finding(f"SQLite ({where}) with {settings.workers} workers")]
    return []
