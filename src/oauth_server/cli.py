"""``oauth-server``: serve, migrate, and manage clients and restaurants; audit and purge.

Commands that change security state (clients, keys, the purge, the start-up of ``serve``)
record their events in an audit chain of their own, written before the command exits.
"""

from __future__ import annotations

import asyncio
import json
import logging.config
import os
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy.exc import DBAPIError

from oauth_server.audit import NO_AUDIT, AuditRecorder, AuditTrail, ChainReport, verify_trail
from oauth_server.bootstrap import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    StartupRefused,
    StartupReport,
    prepare,
    refuse_unsafe_production,
)
from oauth_server.cli_registration import registration
from oauth_server.cli_users import demo_user_banner, users
from oauth_server.clock import SystemClock
from oauth_server.config import ConfigError, Settings, load_settings, redact_url, settings_table
from oauth_server.errors import InvalidRequest
from oauth_server.logs import logging_config
from oauth_server.maintenance import PurgeReport
from oauth_server.oauth.clients import ClientRegistry, InvalidClientMetadata
from oauth_server.oauth.keys import KeyError_, KeyManager
from oauth_server.resource.restaurants import restaurant_from_document
from oauth_server.selfcheck import Report, check_deployment, format_report
from oauth_server.services import build_key_manager, build_purger, max_token_age
from oauth_server.storage import AlreadyExists, AuditRecord, Client, SqlStorage, open_storage
from oauth_server.storage.migrate import current_revision, head_revision
from oauth_server.storage.models import AuthMethod

__all__ = ["main"]

T = TypeVar("T")


def _settings(**overrides: Any) -> Settings:
    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _with_storage(
    settings: Settings, work: Callable[[SqlStorage], Awaitable[T]], *, migrate: bool = True
) -> T:
    async def run() -> T:
        storage = open_storage(settings.database_url, pool_size=2)
        try:
            if migrate:
                await storage.migrate()
            return await work(storage)
        finally:
            await storage.close()

    # Error messages name the database by its URL, never with its password.
    where = redact_url(settings.database_url)
    try:
        return asyncio.run(run())
    except (OSError, ConnectionError) as exc:
        raise click.ClickException(f"cannot reach the database {where}: {exc}") from None
    except DBAPIError as exc:
        raise click.ClickException(f"database error at {where}: {exc.orig}") from None


def _with_audit(
    settings: Settings,
    command: str,
    work: Callable[[SqlStorage, AuditRecorder], Awaitable[T]],
) -> T:
    """Like :func:`_with_storage`, with an audit trail for ``work`` written before returning."""

    async def run(storage: SqlStorage) -> T:
        trail = AuditTrail(storage.audit, clock=SystemClock(), program=f"cli {command}")
        try:
            return await work(storage, trail)
        finally:
            await trail.close()

    return _with_storage(settings, run)


def _client_json(client: Client, secret: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "client_id": client.client_id,
        "name": client.name,
        "grant_types": sorted(client.grant_types),
        "scope": " ".join(sorted(client.scopes)),
        "default_scope": " ".join(client.default_scopes),
        "token_format": client.token_format,
        "resources": list(client.resources),
        "introspect": list(client.introspect),
        "client_type": client.client_type,
        "token_endpoint_auth_methods": sorted(client.auth_methods),
        "redirect_uris": list(client.redirect_uris),
        "post_logout_redirect_uris": list(client.post_logout_redirect_uris),
        "require_consent": client.require_consent,
        "require_pkce": client.require_pkce,
        "created_at": client.created_at,
        "updated_at": client.updated_at,
    }
    if secret is not None:
        data["client_secret"] = secret
    return data


def _print_client(client: Client, secret: str | None, as_json: bool) -> None:
    data = _client_json(client, secret)
    if as_json:
        click.echo(json.dumps(data))
        return
    for key, value in data.items():
        if key != "client_secret":
            click.echo(f"{key:>27}: {' '.join(value) if isinstance(value, list) else value}")
    if secret is not None:
        click.echo(f"{'client_secret':>27}: {secret}")
        click.echo("Store the secret now: it is shown only once and kept only as a hash.", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """PythonOauthServer: an OAuth 2.0 authorization server with a restaurants API.

    Configuration comes from OAUTH_SERVER_* environment variables (see the README).
    """


@main.command()
@click.option("--host", help="Interface to listen on [OAUTH_SERVER_HOST].")
@click.option("--port", type=int, help="Port [OAUTH_SERVER_PORT].")
@click.option("--workers", type=int, help="Worker processes [OAUTH_SERVER_WORKERS].")
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Migrate the database, then serve HTTP with uvicorn (uvloop + httptools)."""
    settings = _settings(host=host, port=port, workers=workers)
    # What start-up logs (the first signing key, the demo data) has the workers' format.
    logging.config.dictConfig(logging_config(settings.effective_log_format, settings.log_level))
    # Worker processes rebuild the settings from the environment: pass the overrides on.
    for name, value in (("HOST", host), ("PORT", port), ("WORKERS", workers)):
        if value is not None:
            os.environ[f"OAUTH_SERVER_{name}"] = str(value)

    async def refuse_unsafe(storage: SqlStorage) -> Report:
        return await refuse_unsafe_production(settings, storage, clock=SystemClock())

    async def bootstrap(storage: SqlStorage, audit: AuditRecorder) -> StartupReport:
        return await prepare(settings, storage, clock=SystemClock(), audit=audit)

    try:
        if settings.env == "production":
            # Before the schema, the audit chain or anything else is written.
            checked = _with_storage(settings, refuse_unsafe, migrate=False)
            for finding in checked.findings:  # none is critical, or it refused
                click.echo(
                    f"self-check {finding.severity}: [{finding.id}] {finding.message}", err=True
                )
        report = _with_audit(settings, "serve", bootstrap)
    except StartupRefused as exc:
        raise click.ClickException(str(exc)) from None
    _banner(settings, report.demo_client_present)
    if report.demo_user_password is not None:  # just created: the only time it is shown
        click.echo(demo_user_banner(report.demo_user_password), err=True)
    with metrics_directory():
        _run_uvicorn(settings)


def _run_uvicorn(settings: Settings) -> None:
    import uvicorn

    from oauth_server.web.protocol import BoundedHttpToolsProtocol

    uvicorn.run(
        "oauth_server.web.app:create_app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop",
        http=BoundedHttpToolsProtocol,
        limit_concurrency=settings.max_connections,
        timeout_keep_alive=settings.keep_alive_timeout,
        lifespan="on",
        log_level=settings.log_level,
        log_config=logging_config(settings.effective_log_format, settings.log_level),
        # The app writes its own request lines (oauth_server.web.requests), with the route
        # template, client and request id.
        access_log=False,
        server_header=False,
        # X-Forwarded-For is read by the app, only from OAUTH_SERVER_TRUSTED_PROXIES and only
        # when it names an IP (oauth_server.addresses); uvicorn's would trust any local client.
        proxy_headers=False,
        timeout_graceful_shutdown=settings.shutdown_timeout,
    )


@contextmanager
def metrics_directory() -> Iterator[Path]:
    """A private directory (0700, new and empty) for the workers' metric files
    (prometheus-client's multiprocess mode reads ``PROMETHEUS_MULTIPROC_DIR``), removed when
    the server stops. Always a new one: files left by an earlier run, or by anyone else, are
    never summed into this server's counters."""
    directory = Path(tempfile.mkdtemp(prefix="oauth-server-metrics-"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _banner(settings: Settings, demo: bool) -> None:
    issuer = settings.public_issuer
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    lines = [
        "",
        # First: the one URL clients must use (RFC 8414 §2: the tokens' `iss` and the
        # metadata's `issuer` are it, whatever address the server listens on).
        f"  Issuer: {issuer}    <- clients must use this URL",
        f"  PythonOauthServer ({settings.env}) listening on {host}:{settings.port}, "
        f"database {redact_url(settings.database_url)}",
    ]
    if demo:
        lines += [
            f"  demo client: {DEMO_CLIENT_ID} / {DEMO_CLIENT_SECRET} (scope restaurent)",
            "",
            f"  curl -s -X POST {issuer}/oauth/token -H 'Content-Type: application/json' \\",
            f'    -d \'{{"client_id": "{DEMO_CLIENT_ID}", "client_secret": '
            f'"{DEMO_CLIENT_SECRET}", "grant_type": "client_credentials", '
            '"scope": "restaurent"}\'',
            "",
            "  a test app for signing in (a public client; README: Sign in with …):",
            '    oauth-server clients create --public --name "Test app" '
            "--redirect-uri http://127.0.0.1:8000/cb --grant-type authorization_code "
            '--grant-type refresh_token --scope "openid profile email offline_access '
            'restaurants:read"',
            "",
            "  an admin client for the admin API (/admin/api; none exists until you make one):",
            "    oauth-server clients create --admin --client-id ops --name Operations",
        ]
    click.echo("\n".join([*lines, ""]), err=True)


@main.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
@click.option("--strict", is_flag=True, help="Warnings fail the check too.")
def check(as_json: bool, strict: bool) -> None:
    """Check this deployment (settings and stored data) against RFC 9700 and the project's
    rules, as if it faced the internet; reads only. Exit 0 when no finding is critical
    (with --strict: no critical finding and no warning), 1 otherwise. The README's
    "Self-check" section lists every rule."""
    settings = _settings()
    report = asyncio.run(check_deployment(settings, clock=SystemClock()))
    if as_json:
        click.echo(json.dumps(report.as_json(strict=strict), indent=2))
    else:
        click.echo(format_report(report, strict=strict))
    if report.failed(strict=strict):
        sys.exit(1)


@main.command("config")
def config_reference() -> None:
    """Print the configuration reference (Markdown) and exit."""
    click.echo(settings_table())


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply all migrations (idempotent). With the secret key at hand, signing keys stored
    before their metadata was bound to them are re-encrypted with it."""
    settings = _settings()

    async def work(storage: SqlStorage) -> str | None:
        if settings.secret_key is not None or settings.secret_key_file.exists():
            try:
                await build_key_manager(settings, storage, SystemClock()).load()
            except KeyError_ as exc:
                click.echo(f"Warning: {exc}", err=True)
        return await current_revision(storage.engine)

    revision = _with_storage(settings, work)
    click.echo(f"database at revision {revision} (head {head_revision()})")


@db.command("purge")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def db_purge(as_json: bool) -> None:
    """Run one purge pass now: expired tokens and revocations, old change-feed entries,
    signing keys past their verification window (what the server does every
    OAUTH_SERVER_PURGE_INTERVAL seconds; safe while servers run)."""
    settings = _settings()

    async def work(storage: SqlStorage, audit: AuditRecorder) -> PurgeReport:
        clock = SystemClock()
        keys = build_key_manager(settings, storage, clock, audit=audit)
        return await build_purger(settings, storage, keys, clock).run_once()

    report = _with_audit(settings, "db purge", work)
    counts = {
        "opaque_tokens": report.opaque_tokens,
        "revoked_tokens": report.revoked_tokens,
        "changes": report.changes,
        "signing_keys": list(report.signing_keys),
        "client_revocations": report.client_revocations,
        "authorization_codes": report.authorization_codes,
        "refresh_tokens": report.refresh_tokens,
        "refresh_families": report.refresh_families,
        "issued_tokens": report.issued_tokens,
        "browser_sessions": report.browser_sessions,
        "interactions": report.interactions,
    }
    if as_json:
        click.echo(json.dumps(counts))
        return
    click.echo(
        f"purged {report.opaque_tokens} expired opaque tokens, {report.revoked_tokens} expired "
        f"revocations, {report.changes} old changes, {len(report.signing_keys)} signing keys"
        + (f" ({', '.join(report.signing_keys)})" if report.signing_keys else "")
        + f", {report.client_revocations} expired client-wide revocations"
        + f", {report.authorization_codes} codes, {report.refresh_tokens} refresh tokens"
        + f" ({report.refresh_families} families), {report.browser_sessions} sessions"
        + f", {report.interactions} interactions"
    )


@main.group()
def clients() -> None:
    """Register and manage OAuth clients."""


@clients.command("create")
@click.option("--client-id", help="Identifier (default: random).")
@click.option("--name", default="", help="Human-readable name.")
@click.option(
    "--public",
    is_flag=True,
    help="A public client (native or browser app): no secret, authenticates with none, "
    "PKCE always.",
)
@click.option(
    "--grant-type",
    "grant_types",
    multiple=True,
    help="Allowed grant type (repeatable): client_credentials, authorization_code, "
    "refresh_token (default: client_credentials; with --public: authorization_code and "
    "refresh_token).",
)
@click.option(
    "--redirect-uri",
    "redirect_uris",
    multiple=True,
    metavar="URI",
    help="Registered redirect URI, matched exactly (repeatable; the first is the default).",
)
@click.option(
    "--post-logout-redirect-uri",
    "post_logout_redirect_uris",
    multiple=True,
    metavar="URI",
    help="Where logout may return to (repeatable).",
)
@click.option(
    "--auth-method",
    "auth_methods",
    multiple=True,
    type=click.Choice(["client_secret_basic", "client_secret_post"]),
    help="Token endpoint auth method of a confidential client (repeatable; default: both).",
)
@click.option(
    "--skip-consent", is_flag=True, help="A first-party client: users are not asked to consent."
)
@click.option(
    "--require-pkce/--no-require-pkce",
    default=True,
    show_default=True,
    help="PKCE on every authorization request (only a confidential client may go without).",
)
@click.option("--scope", default="", help="Space-separated scopes the client may request.")
@click.option(
    "--default-scope",
    default=None,
    help="Scopes granted when a request names none (default: all allowed).",
)
@click.option(
    "--token-format",
    type=click.Choice(["jwt", "opaque"]),
    default="jwt",
    show_default=True,
    help="Access-token format.",
)
@click.option(
    "--resource",
    "resources",
    multiple=True,
    help="Resource (RFC 8707 audience) the client may request; the first is its default "
    "(repeatable; default: the restaurants API).",
)
@click.option(
    "--introspect",
    "introspect",
    multiple=True,
    metavar="AUDIENCE",
    help="Audience whose tokens (of any client) this client may introspect, as a resource "
    "server (repeatable; default: none, it learns only about its own tokens).",
)
@click.option(
    "--admin",
    is_flag=True,
    help="An admin client: adds the admin scope (the admin API's), which nothing else gives.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def clients_create(
    client_id: str | None,
    name: str,
    public: bool,
    grant_types: tuple[str, ...],
    redirect_uris: tuple[str, ...],
    post_logout_redirect_uris: tuple[str, ...],
    auth_methods: tuple[str, ...],
    skip_consent: bool,
    require_pkce: bool,
    scope: str,
    default_scope: str | None,
    token_format: str,
    resources: tuple[str, ...],
    introspect: tuple[str, ...],
    admin: bool,
    as_json: bool,
) -> None:
    """Register a client. A confidential client's secret is printed once; a public client
    has none. Redirect URIs are checked at once (https, or http to a loopback host, or a
    private-use scheme like com.example.app:/callback; never a fragment)."""
    if not grant_types:
        grant_types = ("authorization_code", "refresh_token") if public else ("client_credentials",)
    methods: list[AuthMethod] = [
        "client_secret_post" if method == "client_secret_post" else "client_secret_basic"
        for method in auth_methods
    ]
    if public and methods:
        raise click.ClickException("a public client has no secret: --auth-method is for others")

    async def work(storage: SqlStorage, audit: AuditRecorder) -> tuple[Client, str | None]:
        registry = ClientRegistry(storage, clock=SystemClock(), audit=audit)
        created = await registry.create(
            client_type="public" if public else "confidential",
            auth_methods=methods or None,
            redirect_uris=redirect_uris,
            post_logout_redirect_uris=post_logout_redirect_uris,
            require_consent=not skip_consent,
            require_pkce=require_pkce,
            client_id=client_id,
            name=name,
            grant_types=grant_types,
            scopes=scope.split(),
            default_scopes=None if default_scope is None else default_scope.split(),
            token_format="jwt" if token_format == "jwt" else "opaque",
            resources=resources,
            introspect=introspect,
            admin=admin,
        )
        return created.client, created.secret

    try:
        client, secret = _with_audit(_settings(), "clients create", work)
    except AlreadyExists:
        raise click.ClickException(f"a client {client_id!r} exists already") from None
    except (InvalidClientMetadata, InvalidRequest) as exc:
        raise click.ClickException(str(exc)) from None
    _print_client(client, secret, as_json)


@clients.command("update")
@click.argument("client_id")
@click.option("--name", default=None, help="Human-readable name.")
@click.option(
    "--redirect-uri",
    "redirect_uris",
    multiple=True,
    metavar="URI",
    help="Replace the redirect URIs with these (repeatable).",
)
@click.option(
    "--post-logout-redirect-uri",
    "post_logout_redirect_uris",
    multiple=True,
    metavar="URI",
    help="Replace the post-logout redirect URIs with these (repeatable).",
)
@click.option(
    "--no-post-logout-redirect-uris",
    "clear_post_logout",
    is_flag=True,
    help="Remove every post-logout redirect URI.",
)
@click.option("--scope", default=None, help="Replace the allowed scopes (space-separated).")
@click.option(
    "--default-scope",
    default=None,
    help="Replace the default scopes (with --scope alone: every allowed scope).",
)
@click.option(
    "--skip-consent/--require-consent",
    "skip_consent",
    default=None,
    help="Whether users are asked to consent (skip only for a first-party client).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def clients_update(
    client_id: str,
    name: str | None,
    redirect_uris: tuple[str, ...],
    post_logout_redirect_uris: tuple[str, ...],
    clear_post_logout: bool,
    scope: str | None,
    default_scope: str | None,
    skip_consent: bool | None,
    as_json: bool,
) -> None:
    """Change a client's metadata; what is not named stays as it is. Running servers use the
    new registration within the cache sync interval."""
    if clear_post_logout and post_logout_redirect_uris:
        raise click.ClickException(
            "--no-post-logout-redirect-uris and --post-logout-redirect-uri exclude each other"
        )

    async def work(storage: SqlStorage, audit: AuditRecorder) -> Client | None:
        registry = ClientRegistry(storage, clock=SystemClock(), audit=audit)
        return await registry.update(
            client_id,
            name=name,
            scopes=None if scope is None else scope.split(),
            default_scopes=None if default_scope is None else default_scope.split(),
            redirect_uris=redirect_uris or None,
            post_logout_redirect_uris=(
                () if clear_post_logout else (post_logout_redirect_uris or None)
            ),
            require_consent=None if skip_consent is None else not skip_consent,
        )

    try:
        client = _with_audit(_settings(), "clients update", work)
    except InvalidClientMetadata as exc:
        raise click.ClickException(str(exc)) from None
    if client is None:
        raise click.ClickException(f"no client {client_id!r}")
    _print_client(client, None, as_json)


@clients.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def clients_list(as_json: bool) -> None:
    """List registered clients."""

    async def work(storage: SqlStorage) -> list[Client]:
        return await storage.clients.list()

    found = _with_storage(_settings(), work)
    if as_json:
        click.echo(json.dumps([_client_json(client) for client in found]))
        return
    for client in found:
        click.echo(
            f"{client.client_id}\t{' '.join(sorted(client.grant_types))}\t"
            f"{' '.join(sorted(client.scopes))}\t{client.token_format}\t{client.client_type}"
        )


@clients.command("show")
@click.argument("client_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def clients_show(client_id: str, as_json: bool) -> None:
    """Show one client (never its secret, which is not stored)."""

    async def work(storage: SqlStorage) -> Client | None:
        return await storage.clients.get(client_id=client_id)

    client = _with_storage(_settings(), work)
    if client is None:
        raise click.ClickException(f"no client {client_id!r}")
    _print_client(client, None, as_json)


def _registry(settings: Settings, storage: SqlStorage, audit: AuditRecorder) -> ClientRegistry:
    return ClientRegistry(
        storage, clock=SystemClock(), max_token_age=max_token_age(settings), audit=audit
    )


@clients.command("delete")
@click.argument("client_id")
def clients_delete(client_id: str) -> None:
    """Delete a client and void every token issued to it; running servers stop accepting
    both within the cache sync interval."""
    settings = _settings()

    async def work(storage: SqlStorage, audit: AuditRecorder) -> bool:
        return await _registry(settings, storage, audit).delete(client_id)

    if not _with_audit(settings, "clients delete", work):
        raise click.ClickException(f"no client {client_id!r}")
    click.echo(f"deleted {client_id}")


@clients.command("revoke-tokens")
@click.argument("client_id")
def clients_revoke_tokens(client_id: str) -> None:
    """Revoke every access token issued to a client so far (JWT and opaque, including any
    issued in this same second); running servers refuse them within the cache sync interval.
    The client itself keeps working and gets new tokens as usual."""
    settings = _settings()

    async def work(storage: SqlStorage, audit: AuditRecorder) -> bool:
        return await _registry(settings, storage, audit).revoke_tokens(client_id)

    if not _with_audit(settings, "clients revoke-tokens", work):
        raise click.ClickException(f"no client {client_id!r}")
    click.echo(f"revoked every token issued to {client_id} so far")


@clients.command("rotate-secret")
@click.argument("client_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def clients_rotate_secret(client_id: str, as_json: bool) -> None:
    """Replace a client's secret; the new one is printed once, the old stops working."""

    async def work(storage: SqlStorage, audit: AuditRecorder) -> tuple[Client, str | None] | None:
        registry = ClientRegistry(storage, clock=SystemClock(), audit=audit)
        rotated = await registry.rotate_secret(client_id)
        return (rotated.client, rotated.secret) if rotated else None

    try:
        result = _with_audit(_settings(), "clients rotate-secret", work)
    except InvalidClientMetadata as exc:
        raise click.ClickException(str(exc)) from None
    if result is None:
        raise click.ClickException(f"no client {client_id!r}")
    _print_client(result[0], result[1], as_json)


@main.group()
def keys() -> None:
    """Signing keys of JWT access tokens."""


def _with_keys(
    work: Callable[[KeyManager], Awaitable[T]],
    command: str | None = None,
    *,
    despite_refused: bool = False,
) -> T:
    """Run ``work`` with the key manager; a ``command`` that changes keys is audited. With
    ``despite_refused``, a key that fails its integrity check is reported and ``work`` runs
    anyway (to list it, or to withdraw it)."""
    settings = _settings()

    async def run(storage: SqlStorage, audit: AuditRecorder | None = None) -> T:
        try:
            manager = build_key_manager(settings, storage, SystemClock(), audit=audit or NO_AUDIT)
            await manager.load()
        except KeyError_ as exc:
            if not despite_refused:
                raise click.ClickException(str(exc)) from None
            click.echo(f"Warning: {exc}", err=True)
        try:
            return await work(manager)
        except KeyError_ as exc:
            raise click.ClickException(str(exc)) from None

    if command is None:
        return _with_storage(settings, run)
    return _with_audit(settings, command, run)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def keys_list(as_json: bool) -> None:
    """Show every key with its state: pending, active, retired (still verifying), expired,
    removed, or refused (its stored row fails the integrity check)."""

    async def work(manager: KeyManager) -> list[dict[str, Any]]:
        return manager.describe()

    rows = _with_keys(work, despite_refused=True)
    if as_json:
        click.echo(json.dumps(rows))
        return
    for row in rows:
        click.echo(f"{row['kid']}\t{row['alg']}\t{row['state']}\tgeneration {row['generation']}")


@keys.command("rotate")
@click.option(
    "--immediately",
    is_flag=True,
    help="Sign with the new key at once instead of after the publish lead.",
)
def keys_rotate(immediately: bool) -> None:
    """Publish a new signing key; it takes over after OAUTH_SERVER_KEY_PUBLISH_LEAD seconds."""

    async def work(manager: KeyManager) -> str | None:
        return await manager.rotate(immediately=immediately)

    kid = _with_keys(work, "keys rotate")
    if kid is None:
        raise click.ClickException("another instance created a key at the same moment; retry")
    click.echo(f"new signing key {kid}")


# A kid is an RFC 7638 thumbprint in base64url, so one in 64 starts with "-": such an argument
# is the kid, not options (a compromised key must be removable as shown). With no short option
# left (help is --help only), click keeps the whole unknown token, in order, as the argument.
@keys.command(
    "remove", context_settings={"ignore_unknown_options": True, "help_option_names": ["--help"]}
)
@click.argument("kid")
def keys_remove(kid: str) -> None:
    """Withdraw a (compromised) key: its private key is erased, a new key signs at once, and
    running servers drop it within OAUTH_SERVER_CACHE_SYNC_INTERVAL seconds."""

    async def work(manager: KeyManager) -> bool:
        return await manager.remove(kid)

    if not _with_keys(work, "keys remove", despite_refused=True):
        raise click.ClickException(f"no active key {kid!r}")
    click.echo(f"removed {kid}")


@main.group()
def audit() -> None:
    """The audit trail of security events (hash-chained, one chain per writing process)."""


def _chain_line(report: ChainReport) -> str:
    return (
        f"{report.chain_id}  {report.events} events  {_when(report.first_at_ms)} .. "
        f"{_when(report.last_at_ms)}  head {report.head.hex()}  "
        + ("ok" if report.ok else "TAMPERED")
    )


def _when(at_ms: int) -> str:
    moment = datetime.fromtimestamp(at_ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@audit.command("verify")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def audit_verify(as_json: bool) -> None:
    """Recompute every chain; exit 1 if a row was changed, deleted or reordered.

    Rows cut from the end of a chain cannot be told from events lost in a crash: compare the
    head digests printed here with a copy kept elsewhere to detect that.
    """

    async def work(storage: SqlStorage) -> list[ChainReport]:
        return await verify_trail(storage.audit)

    reports = _with_storage(_settings(), work)
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "chain_id": r.chain_id,
                        "events": r.events,
                        "first_at_ms": r.first_at_ms,
                        "last_at_ms": r.last_at_ms,
                        "head": r.head.hex(),
                        "ok": r.ok,
                        "problems": r.problems,
                    }
                    for r in reports
                ]
            )
        )
    else:
        for report in reports:
            click.echo(_chain_line(report))
            for problem in report.problems:
                click.echo(f"    {problem}")
    bad = [r for r in reports if not r.ok]
    if bad:
        raise click.ClickException(
            f"tampering detected: {len(bad)} of {len(reports)} chains fail verification"
        )
    if not as_json:
        events = sum(r.events for r in reports)
        click.echo(f"{len(reports)} chains, {events} events: every chain verifies", err=True)


@audit.command("tail")
@click.option(
    "-n",
    "count",
    type=click.IntRange(1, 100_000),
    default=20,
    show_default=True,
    help="How many of the most recent events.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per line.")
def audit_tail(count: int, as_json: bool) -> None:
    """Show the most recent events, oldest first."""

    async def work(storage: SqlStorage) -> list[AuditRecord]:
        return await storage.audit.recent(limit=count)

    for record in reversed(_with_storage(_settings(), work)):
        data = json.loads(record.data)
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "at": _when(record.at_ms),
                        "kind": record.kind,
                        "chain_id": record.chain_id,
                        "seq": record.seq,
                        "data": data,
                    }
                )
            )
            continue
        fields = " ".join(f"{key}={json.dumps(value)}" for key, value in data.items())
        click.echo(
            f"{_when(record.at_ms)}  {record.kind:<22} {fields}  "
            f"[{record.chain_id[:8]}#{record.seq}]"
        )


@main.group()
def restaurants() -> None:
    """Restaurant data."""


@restaurants.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def restaurants_import(file: Path) -> None:
    """Import a JSON array of restaurants (MongoDB extended JSON ``{"$oid": …}`` accepted).

    Documents with an ``_id`` replace the restaurant with that id; others get a new id.
    """
    try:
        documents = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise click.ClickException(f"{file} is not valid JSON: {exc}") from None
    if not isinstance(documents, list):
        raise click.ClickException(f"{file} must contain a JSON array of restaurants")
    now = int(SystemClock().now())
    parsed = []
    for index, document in enumerate(documents):
        try:
            parsed.append(restaurant_from_document(document, now=now))
        except InvalidRequest as exc:
            raise click.ClickException(f"restaurant #{index}: {exc.description}") from None

    async def work(storage: SqlStorage) -> int:
        return await storage.restaurants.add_many(restaurants=parsed)

    count = _with_storage(_settings(), work)
    click.echo(f"imported {count} restaurants")


main.add_command(users)
main.add_command(registration)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
