"""Checks of the stored data: the database itself, demo rows, signing keys, clients."""

from __future__ import annotations

from oauth_server.algorithms import SIGNING_ALGS
from oauth_server.demo import (
    DEMO_CLIENT_ID,
    DEMO_USERNAME,
    demo_client_present,
    demo_user_present,
)
from oauth_server.oauth.clients import InvalidClientMetadata, check_client
from oauth_server.oauth.keys import KeyError_
from oauth_server.oauth.redirect_uris import InvalidRedirectUri, check_redirect_uri
from oauth_server.selfcheck.registry import Deployment, Finding, check, rule
from oauth_server.services import build_key_manager, secret_key_source

__all__ = ["CHECK_FAILED", "DATABASE_ABSENT", "DATABASE_UNREACHABLE", "MIGRATIONS_PENDING"]

DAY = 86_400

# Reported by the runner (oauth_server.selfcheck.check_deployment), which decides from them
# whether the checks below can run.
DATABASE_UNREACHABLE = rule(
    "database.unreachable",
    "critical",
    reference="project rule",
    setting="OAUTH_SERVER_DATABASE_URL",
    fix="check OAUTH_SERVER_DATABASE_URL and that the database server is up and reachable",
    summary="The database cannot be reached (the data checks are skipped).",
)
DATABASE_ABSENT = rule(
    "database.absent",
    "info",
    reference="project rule",
    setting="OAUTH_SERVER_DATABASE_URL",
    fix="none needed: `oauth-server serve` or `db upgrade` creates it (owner-only)",
    summary="The SQLite file does not exist yet (the data checks are skipped).",
)
CHECK_FAILED = rule(
    "check.failed",
    "critical",
    reference="project rule",
    setting="(the check named)",
    fix="fix what the error names (a database error mid-check, say) and run the check again",
    summary="A check raised an error instead of answering: the deployment is not known safe.",
)
MIGRATIONS_PENDING = rule(
    "migrations.pending",
    "warning",
    reference="project rule",
    setting="oauth-server db upgrade",
    fix="run `oauth-server db upgrade` (`serve` applies them too, then checks the data)",
    summary="The schema is not at this version's head (the data checks are skipped).",
)

DEMO_CLIENT = rule(
    "demo-client.present",
    "critical",
    reference="project rule",
    setting=f"oauth-server clients delete {DEMO_CLIENT_ID}",
    fix=f"delete it: `oauth-server clients delete {DEMO_CLIENT_ID}`",
    summary=f"The demo client `{DEMO_CLIENT_ID}` exists with its published secret.",
)
DEMO_USER = rule(
    "demo-user.present",
    "critical",
    reference="project rule",
    setting=f"oauth-server users delete {DEMO_USERNAME}",
    fix=f"delete it: `oauth-server users delete {DEMO_USERNAME}`",
    summary=f"The demo user `{DEMO_USERNAME}` that development created exists.",
)


@check("demo data", needs="schema", rules=[DEMO_CLIENT, DEMO_USER])
async def demo_rows(deployment: Deployment) -> list[Finding]:
    findings = []
    if await demo_client_present(deployment.db):
        findings.append(
            DEMO_CLIENT.finding(
                f"the demo client {DEMO_CLIENT_ID!r} with its published secret exists; "
                f"delete it with `oauth-server clients delete {DEMO_CLIENT_ID}`"
            )
        )
    if await demo_user_present(deployment.db):
        findings.append(
            DEMO_USER.finding(
                f"the development demo user {DEMO_USERNAME!r} exists; "
                f"delete it with `oauth-server users delete {DEMO_USERNAME}`"
            )
        )
    return findings


KEY_UNDECRYPTABLE = rule(
    "signing-key.refused",
    "critical",
    reference="project rule (signing keys bound to their metadata)",
    setting="OAUTH_SERVER_SECRET_KEY",
    fix="configure the secret key the keys were stored with, or withdraw the key with "
    "`oauth-server keys remove KID`",
    summary="A stored signing key does not decrypt with the secret key, or its row was changed.",
)
KEY_ALG = rule(
    "signing-key.alg",
    "critical",
    reference="RFC 8725 §3.1",
    setting="oauth-server keys remove KID",
    fix="withdraw it with `oauth-server keys remove KID`",
    summary="A stored signing key's algorithm is not in the allowlist "
    f"({', '.join(SIGNING_ALGS)}).",
)
KEY_OVERDUE = rule(
    "signing-key.overdue",
    "warning",
    reference="project rule (NIST SP 800-57 Part 1 §5.3)",
    setting="oauth-server keys rotate",
    fix="run `oauth-server keys rotate` (a running server rotates on schedule)",
    summary="The signing key has signed for more than a day past "
    "OAUTH_SERVER_KEY_ROTATION_INTERVAL (or for more than 90 days with rotation off).",
)
KEY_NONE = rule(
    "signing-key.none",
    "info",
    reference="project rule",
    setting="oauth-server serve",
    fix="none needed: the first start creates one",
    summary="No signing key is stored yet.",
)
_UNROTATED_MAX = 90 * DAY


@check("signing keys", needs="schema", rules=[KEY_UNDECRYPTABLE, KEY_ALG, KEY_OVERDUE, KEY_NONE])
async def signing_keys(deployment: Deployment) -> list[Finding]:
    settings, storage = deployment.settings, deployment.db
    findings = []
    records = [r for r in await storage.keys.list() if r.removed_at is None]
    for record in records:
        if record.alg not in SIGNING_ALGS:
            findings.append(
                KEY_ALG.finding(
                    f"signing key {record.kid} is stored with the algorithm {record.alg!r}",
                    fix=f"withdraw it with `oauth-server keys remove {record.kid}`",
                )
            )
    # Decrypting needs the secret; without one, the secret-key check has said so. Reading a
    # development file that does not exist yet would create it: not here.
    if records and secret_key_source(settings).value is not None:
        try:
            manager = build_key_manager(settings, storage, deployment.clock)
        except KeyError_:
            pass  # the secret itself is unusable (too short): the secret-key check says so
        else:
            try:
                await manager.load()
            except KeyError_ as exc:
                findings.append(KEY_UNDECRYPTABLE.finding(str(exc)))
    now = deployment.clock.now()
    signing = [r for r in records if r.activates_at <= now]
    if not signing:
        findings.append(KEY_NONE.finding("no signing key is stored yet"))
        return findings
    current = max(signing, key=lambda r: (r.activates_at, r.generation))
    age = now - current.activates_at
    interval = settings.key_rotation_interval
    allowed = interval + DAY if interval > 0 else _UNROTATED_MAX
    if age > allowed:
        findings.append(
            KEY_OVERDUE.finding(
                f"signing key {current.kid} has signed for {age / DAY:.0f} days "
                f"(rotation due after {interval / DAY:.0f})"
                if interval > 0
                else f"signing key {current.kid} has signed for {age / DAY:.0f} days"
            )
        )
    return findings


CLIENT_PKCE_RELAXED = rule(
    "client.pkce-relaxed",
    "warning",
    reference="RFC 9700 §2.1.1",
    setting="oauth-server clients create … --require-pkce",
    fix="re-register the client with PKCE required (the default)",
    summary="A confidential client with the code grant may go without PKCE (listed by id).",
)
CLIENT_PUBLIC_PKCE = rule(
    "client.public-without-pkce",
    "critical",
    reference="RFC 9700 §2.1.1; OAuth 2.1 §4.1.2.1",
    setting="oauth-server clients delete ID",
    fix="delete and re-register the client: a public client always uses PKCE",
    summary="A stored public client is marked as not requiring PKCE (the server requires it "
    "anyway; the row was not written by this server's rules).",
)
CLIENT_REDIRECT_URI = rule(
    "client.redirect-uri",
    "critical",
    reference="RFC 9700 §2.1, §4.1.3; RFC 8252 §7.3",
    setting="oauth-server clients update ID --redirect-uri …",
    fix="register exact https (or loopback http, or private-use scheme) redirect URIs",
    summary="A stored redirect URI breaks the registration rules: http to a non-loopback "
    "host, a wildcard, a fragment, a dangerous scheme.",
)
CLIENT_INVALID = rule(
    "client.invalid",
    "critical",
    reference="RFC 6749 §2.1; OAuth 2.1 §4.2",
    setting="oauth-server clients delete ID",
    fix="delete and re-register the client",
    summary="A stored client breaks another registration rule (a public client with a "
    "secret or client_credentials, a grant without its prerequisites).",
)


@check(
    "clients",
    needs="schema",
    rules=[CLIENT_PKCE_RELAXED, CLIENT_PUBLIC_PKCE, CLIENT_REDIRECT_URI, CLIENT_INVALID],
)
async def clients(deployment: Deployment) -> list[Finding]:
    findings: list[Finding] = []
    relaxed = []
    for client in await deployment.db.clients.list():
        found = len(findings)
        for uri in (*client.redirect_uris, *client.post_logout_redirect_uris):
            try:
                check_redirect_uri(uri)
            except InvalidRedirectUri as exc:
                findings.append(
                    CLIENT_REDIRECT_URI.finding(
                        f"client {client.client_id!r}: redirect URI {uri[:100]!r} {exc}",
                        setting=f"oauth-server clients update {client.client_id} --redirect-uri …",
                    )
                )
        if client.client_type == "public" and not client.require_pkce:
            findings.append(
                CLIENT_PUBLIC_PKCE.finding(
                    f"public client {client.client_id!r} is stored with require_pkce false",
                    setting=f"oauth-server clients delete {client.client_id}",
                )
            )
        if len(findings) == found:
            try:
                check_client(client)
            except InvalidClientMetadata as exc:
                findings.append(
                    CLIENT_INVALID.finding(
                        f"client {client.client_id!r}: {exc}",
                        setting=f"oauth-server clients delete {client.client_id}",
                    )
                )
        if (
            client.client_type == "confidential"
            and not client.require_pkce
            and "authorization_code" in client.grant_types
        ):
            relaxed.append(client.client_id)
    if relaxed:
        findings.append(
            CLIENT_PKCE_RELAXED.finding(
                f"{len(relaxed)} confidential client(s) may skip PKCE: "
                + ", ".join(repr(client_id) for client_id in sorted(relaxed)[:20])
                + (", …" if len(relaxed) > 20 else "")
            )
        )
    return findings
