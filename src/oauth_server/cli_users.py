"""``oauth-server users``: create and manage the people who sign in.

A password is never an argument: it is typed twice at a hidden prompt, or read from standard
input with ``--password-stdin`` (for scripts). It is never printed, logged or audited.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from oauth_server.accounts import (
    MAX_PASSWORD_BYTES,
    Accounts,
    InvalidPassword,
    InvalidUserData,
)
from oauth_server.accounts.passwords import prepare_new_password
from oauth_server.audit import NO_AUDIT, AuditRecorder
from oauth_server.bootstrap import DEMO_USERNAME
from oauth_server.clock import SystemClock
from oauth_server.services import build_accounts
from oauth_server.storage import AlreadyExists, SqlStorage, User

__all__ = ["demo_user_banner", "users"]

T = TypeVar("T")
_PAGE = 500


def demo_user_banner(password: str) -> str:
    """The start-up banner's lines for a demo user created by this start."""
    return (
        f"  demo user: {DEMO_USERNAME} / {password}   (shown only now; "
        f"`oauth-server users set-password {DEMO_USERNAME}` sets another)\n"
    )


def _with_accounts(command: str | None, work: Callable[[Accounts], Awaitable[T]]) -> T:
    """Run ``work`` with the accounts service; a ``command`` that changes users is audited."""
    from oauth_server import cli  # here, not at the top: cli.py registers this module's group

    settings = cli._settings()

    async def run(storage: SqlStorage, audit: AuditRecorder = NO_AUDIT) -> T:
        accounts = build_accounts(settings, storage, SystemClock(), audit=audit)
        try:
            return await work(accounts)
        finally:
            accounts.hashing.close()

    if command is None:
        return cli._with_storage(settings, run)
    return cli._with_audit(settings, command, run)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        # Bounded: a password is at most MAX_PASSWORD_BYTES, plus the line ending.
        text = sys.stdin.read(MAX_PASSWORD_BYTES + 3)
        text = text.removesuffix("\n").removesuffix("\r")
        if not text:
            raise click.ClickException("no password on standard input")
        if "\n" in text or "\r" in text:
            raise click.ClickException("standard input must hold the password alone on one line")
    else:
        text = str(click.prompt("Password", hide_input=True, confirmation_prompt=True))
    try:
        prepare_new_password(text)  # refuse it before touching the database
    except InvalidPassword as exc:
        raise click.ClickException(str(exc)) from None
    return text


def _user_json(user: User) -> dict[str, Any]:
    return {
        "user_id": user.user_id,
        "username": user.username,
        "name": user.name,
        "given_name": user.given_name,
        "family_name": user.family_name,
        "preferred_username": user.preferred_username,
        "email": user.email,
        "email_verified": user.email_verified,
        "disabled": user.disabled,
        "is_admin": user.is_admin,
        "created_at": user.created_at,
        "updated_at": user.updated_at,
    }


def _print_user(user: User, as_json: bool) -> None:
    data = _user_json(user)
    if as_json:
        click.echo(json.dumps(data))
        return
    for key, value in data.items():
        shown = str(value).lower() if isinstance(value, bool) else value
        click.echo(f"{key:>18}: {shown}")


def _no_user(username: str) -> click.ClickException:
    return click.ClickException(f"no user {username!r}")


@click.group()
def users() -> None:
    """Create and manage users (people who sign in)."""


@users.command("create")
@click.argument("username")
@click.option("--name", default="", help="Full name (OIDC `name`).")
@click.option("--given-name", default="", help="Given name (OIDC `given_name`).")
@click.option("--family-name", default="", help="Family name (OIDC `family_name`).")
@click.option("--email", default="", help="E-mail address (OIDC `email`).")
@click.option("--email-verified", is_flag=True, help="Mark the e-mail address as verified.")
@click.option(
    "--admin",
    "is_admin",
    is_flag=True,
    help="An administrator: may sign in to the admin console and be granted the admin scope.",
)
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (one line)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def users_create(
    username: str,
    name: str,
    given_name: str,
    family_name: str,
    email: str,
    email_verified: bool,
    is_admin: bool,
    password_stdin: bool,
    as_json: bool,
) -> None:
    """Create a user. USERNAME: 1-64 characters of A-Z a-z 0-9 . _ @ -, case-insensitive.

    Without --password-stdin the password is asked for twice, hidden; it is stored only as
    an argon2id hash.
    """
    password = _read_password(password_stdin)

    async def work(accounts: Accounts) -> User:
        return await accounts.create(
            username,
            password,
            name=name,
            given_name=given_name,
            family_name=family_name,
            email=email,
            email_verified=email_verified,
            is_admin=is_admin,
        )

    try:
        user = _with_accounts("users create", work)
    except AlreadyExists:
        raise click.ClickException(f"a user {username.lower()!r} exists already") from None
    except (InvalidUserData, InvalidPassword) as exc:
        raise click.ClickException(str(exc)) from None
    _print_user(user, as_json)


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def users_list(as_json: bool) -> None:
    """List users, by username."""

    async def work(accounts: Accounts) -> list[User]:
        found: list[User] = []
        while page := await accounts.list(limit=_PAGE, after=found[-1].username if found else None):
            found += page
            if len(page) < _PAGE:
                break
        return found

    found = _with_accounts(None, work)
    if as_json:
        click.echo(json.dumps([_user_json(user) for user in found]))
        return
    for user in found:
        state = "disabled" if user.disabled else "enabled"
        role = "admin" if user.is_admin else "user"
        click.echo(f"{user.username}\t{user.user_id}\t{state}\t{role}\t{user.name}\t{user.email}")


@users.command("show")
@click.argument("username")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def users_show(username: str, as_json: bool) -> None:
    """Show one user (never its password, which is not stored, nor its hash)."""

    async def work(accounts: Accounts) -> User | None:
        return await accounts.find(username)

    user = _with_accounts(None, work)
    if user is None:
        raise _no_user(username)
    _print_user(user, as_json)


@users.command("set-password")
@click.argument("username")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (one line)."
)
def users_set_password(username: str, password_stdin: bool) -> None:
    """Give a user a new password (asked for twice, hidden, unless --password-stdin)."""
    password = _read_password(password_stdin)

    async def work(accounts: Accounts) -> bool:
        user = await accounts.find(username)
        return user is not None and await accounts.set_password(user.user_id, password)

    try:
        changed = _with_accounts("users set-password", work)
    except InvalidPassword as exc:
        raise click.ClickException(str(exc)) from None
    if not changed:
        raise _no_user(username)
    click.echo(f"new password set for {username.lower()}")


def _set_disabled(username: str, disabled: bool) -> None:
    command = "users disable" if disabled else "users enable"

    async def work(accounts: Accounts) -> bool | None:
        user = await accounts.find(username)
        if user is None:
            return None
        return await accounts.set_disabled(user.user_id, disabled)

    changed = _with_accounts(command, work)
    if changed is None:
        raise _no_user(username)
    state = "disabled" if disabled else "enabled"
    click.echo(f"{state} {username.lower()}" if changed else f"{username.lower()} was {state}")


@users.command("disable")
@click.argument("username")
def users_disable(username: str) -> None:
    """Disable a user: its password stops working (with the same answer as a wrong one)."""
    _set_disabled(username, True)


@users.command("enable")
@click.argument("username")
def users_enable(username: str) -> None:
    """Enable a disabled user again."""
    _set_disabled(username, False)


@users.command("set-admin")
@click.argument("username")
@click.option("--withdraw", is_flag=True, help="Take the admin flag away instead of granting it.")
def users_set_admin(username: str, withdraw: bool) -> None:
    """Make a user an administrator (admin console, admin scope), or with --withdraw no longer
    one; the withdrawal counts from the user's next admin request."""

    async def work(accounts: Accounts) -> bool | None:
        user = await accounts.find(username)
        if user is None:
            return None
        return await accounts.set_admin(user.user_id, not withdraw)

    changed = _with_accounts("users set-admin", work)
    if changed is None:
        raise _no_user(username)
    name = username.lower()
    if withdraw:
        click.echo(f"{name} is no longer an admin" if changed else f"{name} was not an admin")
    else:
        click.echo(f"{name} is an admin" if changed else f"{name} was an admin already")


@users.command("delete")
@click.argument("username")
def users_delete(username: str) -> None:
    """Delete a user for good (its id is never given to another user)."""

    async def work(accounts: Accounts) -> bool:
        user = await accounts.find(username)
        return user is not None and await accounts.delete(user.user_id)

    if not _with_accounts("users delete", work):
        raise _no_user(username)
    click.echo(f"deleted {username.lower()}")
