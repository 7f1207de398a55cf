"""``oauth-server registration``: initial access tokens for dynamic client registration
(RFC 7591 §3). A token's value is printed once, when it is created, and kept only as a hash;
its id (not secret) lists and revokes it."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import click

from oauth_server.audit import AuditRecorder
from oauth_server.clock import SystemClock
from oauth_server.oauth.initial_tokens import (
    MAX_TOKEN_CLIENTS,
    MAX_TOKEN_LIFETIME,
    InitialAccessTokens,
    NewInitialAccessToken,
)
from oauth_server.storage import InitialAccessToken, SqlStorage

__all__ = ["parse_duration", "registration"]

_DURATION = re.compile(r"([0-9]{1,9})([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400}


def parse_duration(value: str) -> int:
    """``90``, ``90s``, ``15m``, ``12h``, ``30d`` → seconds."""
    match = _DURATION.fullmatch(value.strip())
    if match is None:
        raise click.BadParameter(f"{value!r} is not a duration such as 3600, 15m, 12h or 30d")
    return int(match.group(1)) * _UNITS[match.group(2)]


def _when(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _token_json(token: InitialAccessToken) -> dict[str, Any]:
    return {
        "id": token.token_id,
        "description": token.description,
        "max_clients": token.max_clients,
        "clients_registered": token.clients_registered,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "revoked_at": token.revoked_at,
    }


@click.group()
def registration() -> None:
    """Dynamic client registration (RFC 7591): initial access tokens."""


@registration.command("create-token")
@click.option(
    "--max-clients",
    type=click.IntRange(1, MAX_TOKEN_CLIENTS),
    help="Clients it may register (default: OAUTH_SERVER_REGISTRATION_MAX_CLIENTS_PER_TOKEN).",
)
@click.option(
    "--expires-in", default="7d", show_default=True, help="Lifetime: 3600, 15m, 12h, 30d…"
)
@click.option("--description", default="", help="A note for the list (who it is for).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def create_token(max_clients: int | None, expires_in: str, description: str, as_json: bool) -> None:
    """Create an initial access token; its value is printed once."""
    from oauth_server import cli

    settings = cli._settings()
    lifetime = parse_duration(expires_in)
    if not 60 <= lifetime <= MAX_TOKEN_LIFETIME:
        raise click.BadParameter(
            f"must be 60 s to {MAX_TOKEN_LIFETIME // 86_400} days", param_hint="--expires-in"
        )
    limit = max_clients or settings.registration_max_clients_per_token

    async def work(storage: SqlStorage, audit: AuditRecorder) -> NewInitialAccessToken:
        tokens = InitialAccessTokens(storage.registrations, clock=SystemClock(), audit=audit)
        return await tokens.create(max_clients=limit, expires_in=lifetime, description=description)

    created = cli._with_audit(settings, "registration create-token", work)
    if as_json:
        click.echo(json.dumps({**_token_json(created.token), "token": created.value}))
    else:
        click.echo(f"initial access token: {created.value}")
        click.echo(f"                  id: {created.token.token_id}")
        click.echo(f"         max clients: {created.token.max_clients}")
        click.echo(f"             expires: {_when(created.token.expires_at)}")
        click.echo("Store the token now: it is shown only once and kept only as a hash.", err=True)
    if settings.registration != "initial-token":
        click.echo(
            f"note: OAUTH_SERVER_REGISTRATION is {settings.registration!r}; the token is "
            "accepted only when it is 'initial-token'",
            err=True,
        )


@registration.command("list-tokens")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_tokens(as_json: bool) -> None:
    """List initial access tokens (never their values), newest first."""
    from oauth_server import cli

    async def work(storage: SqlStorage) -> list[InitialAccessToken]:
        return await InitialAccessTokens(storage.registrations, clock=SystemClock()).list()

    tokens = cli._with_storage(cli._settings(), work)
    if as_json:
        click.echo(json.dumps([_token_json(token) for token in tokens]))
        return
    now = SystemClock().now()
    for token in tokens:
        state = (
            "revoked"
            if token.revoked_at is not None
            else "expired"
            if token.expires_at <= now
            else "used up"
            if token.clients_registered >= token.max_clients
            else "active"
        )
        click.echo(
            f"{token.token_id}  {state:8} {token.clients_registered}/{token.max_clients} "
            f"clients  expires {_when(token.expires_at)}  {token.description}"
        )


@registration.command("revoke-token")
@click.argument("token_id")
def revoke_token(token_id: str) -> None:
    """Revoke an initial access token by id; clients it registered stay registered."""
    from oauth_server import cli

    async def work(storage: SqlStorage, audit: AuditRecorder) -> bool:
        tokens = InitialAccessTokens(storage.registrations, clock=SystemClock(), audit=audit)
        return await tokens.revoke(token_id)

    if not cli._with_audit(cli._settings(), "registration revoke-token", work):
        raise click.ClickException(f"no active initial access token {token_id!r}")
    click.echo(f"revoked {token_id}")
