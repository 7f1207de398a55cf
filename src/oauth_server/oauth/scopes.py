"""Scope strings (RFC 6749 §3.3): space-delimited, case-sensitive scope tokens."""

from __future__ import annotations

import re
from collections.abc import Iterable

from oauth_server.errors import InvalidScope

__all__ = [
    "ADMIN_SCOPE",
    "MAX_SCOPES",
    "USER_SCOPES",
    "format_scope",
    "parse_scope",
    "resolve_scope",
]

# scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,128}")
MAX_SCOPES = 50
USER_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
"""OpenID Connect scopes (OIDC Core §3.1.2.1, §5.4, §11): they ask for a person's identity,
claims or offline access, so only a grant with a signed-in user (``authorization_code``,
``refresh_token``) may grant them; ``client_credentials`` never does, even to a client that
has them for its sign-in grants."""

ADMIN_SCOPE = "admin"
"""The admin API's scope. Only a client registered as an admin client has it (``clients
create --admin``), and a token issued for a user carries it only if that user is an admin."""


def parse_scope(value: str | None) -> tuple[str, ...]:
    """Split a scope parameter into unique tokens, keeping the client's order."""
    if value is None:
        return ()
    tokens: dict[str, None] = {}
    for token in value.split(" "):
        if not token:
            continue  # tolerate doubled spaces; the RFC grammar has one, clients send more
        if _SCOPE_TOKEN.fullmatch(token) is None:
            raise InvalidScope("the scope parameter is malformed")
        tokens[token] = None
        if len(tokens) > MAX_SCOPES:
            raise InvalidScope(f"at most {MAX_SCOPES} scopes may be requested")
    return tuple(tokens)


def format_scope(scopes: Iterable[str]) -> str:
    return " ".join(scopes)


def resolve_scope(
    requested: str | None, *, allowed: frozenset[str], default: tuple[str, ...]
) -> tuple[str, ...]:
    """The scope to grant: the request's, which must lie within ``allowed``, else the default.

    RFC 6749 §3.3: when the scope is omitted the server "MUST either process the request using a
    pre-defined default value or fail the request indicating an invalid scope".
    """
    scopes = parse_scope(requested) or default
    if not scopes:
        raise InvalidScope("no scope was requested and the client has no default scope")
    unknown = [scope for scope in scopes if scope not in allowed]
    if unknown:
        raise InvalidScope(f"scope not allowed for this client: {' '.join(unknown)}")
    return scopes
