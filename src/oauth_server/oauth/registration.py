"""Dynamic client registration (RFC 7591) and management (RFC 7592): the metadata document,
the policy it must obey, and the response documents. Pure: no I/O, no settings.

A registration request is read in this order, each step cheap before the next:

1. At most :data:`MAX_DOCUMENT_BYTES`, ``application/json``, one JSON object without a
   repeated member, nested at most :data:`MAX_DEPTH` deep (RFC 7591 §3.1: "the client sends
   an HTTP POST ... with a content type of application/json").
2. ``software_statement`` (RFC 7591 §2.3): this server approves no issuer of software
   statements, so a well-formed one is ``unapproved_software_statement`` and anything else
   ``invalid_software_statement``.
3. ``jwks`` and ``jwks_uri``: only for ``private_key_jwt`` and the like, which this server
   does not support — refused, not ignored, so that a client does not believe its keys are in
   use.
4. Every supported member is type-checked and bounded; unknown members are ignored (RFC 7591
   §2: "The authorization server MUST ignore any client metadata sent by the client that it
   does not understand").
5. The policy (:class:`RegistrationPolicy`): grant types, redirect-URI schemes and hosts,
   scopes and token endpoint authentication methods, each outside it refused with the RFC
   7591 §3.2.2 code (``invalid_redirect_uri`` for redirect URIs, else
   ``invalid_client_metadata``). Refusing rather than silently narrowing (which §3.2.1 also
   allows) tells the developer at once what the server will not do.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from oauth_server.errors import (
    InvalidClientMetadataError,
    InvalidRedirectUriError,
    InvalidScope,
    InvalidSoftwareStatement,
    UnapprovedSoftwareStatement,
)
from oauth_server.oauth.clients import SUPPORTED_GRANT_TYPES
from oauth_server.oauth.redirect_uris import (
    MAX_REDIRECT_URI_LENGTH,
    InvalidRedirectUri,
    check_redirect_uri,
)
from oauth_server.oauth.scopes import USER_SCOPES, parse_scope
from oauth_server.storage.models import AuthMethod, Client

__all__ = [
    "EXTRA_MEMBERS",
    "MAX_DEPTH",
    "MAX_DOCUMENT_BYTES",
    "MAX_REDIRECT_URIS",
    "SUPPORTED_AUTH_METHODS",
    "ClientMetadata",
    "RegistrationPolicy",
    "client_document",
    "parse_document",
    "read_metadata",
]

MAX_DOCUMENT_BYTES: Final = 16_384
"""A registration or update body; ten redirect URIs of 1,000 characters fit."""
MAX_DEPTH: Final = 4
"""Nesting of the JSON document: the deepest supported member is a list of strings (2)."""
MAX_REDIRECT_URIS: Final = 10
MAX_CONTACTS: Final = 5
MAX_TEXT: Final = 200
"""``client_name``, ``software_id``, ``software_version``, in characters."""
MAX_CONTACT: Final = 254
MAX_SCOPE_LENGTH: Final = 1000
SUPPORTED_AUTH_METHODS: Final[frozenset[AuthMethod]] = frozenset(
    {"client_secret_basic", "client_secret_post", "none"}
)
EXTRA_MEMBERS: Final = (
    "client_uri",
    "logo_uri",
    "tos_uri",
    "policy_uri",
    "contacts",
    "software_id",
    "software_version",
)
"""Metadata kept and returned as given, which nothing else in the server reads."""
_WEB_URIS: Final = ("client_uri", "logo_uri", "tos_uri", "policy_uri")
_PRIVATE_USE: Final = "private-use"
# Controls (C0, DEL, C1), lone surrogates (JSON can escape them; PostgreSQL cannot store
# them), and the invisible and bidirectional formatting characters with which a client name
# shown on the consent page could pretend to be another (Trojan Source, CVE-2021-42574).
_NOT_TEXT = re.compile(
    r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]"
)
_CONTACT = re.compile(r"[^\s@]{1,64}@[^\s@]{1,189}")
_JWS_PART = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class RegistrationPolicy:
    """What a dynamically registered client may be.

    ``redirect_uri_schemes``: ``https``; ``http``, which :func:`check_redirect_uri` allows only
    to a loopback host (RFC 8252 §7.3); ``private-use`` for any reverse-DNS scheme of a
    native app (RFC 8252 §7.1), or such schemes by name. ``redirect_uri_hosts``: the hosts an
    ``https`` redirect URI may name — ``example.com`` exactly, ``*.example.com`` any host under
    it; empty allows any host (and so lets anyone who may register choose where the
    authorization endpoint sends its responses, error responses included: RFC 9700 §4.11.2).
    """

    grant_types: frozenset[str] = frozenset({"authorization_code", "refresh_token"})
    redirect_uri_schemes: frozenset[str] = frozenset({"https", "http", _PRIVATE_USE})
    redirect_uri_hosts: tuple[str, ...] = ()
    scopes: frozenset[str] = frozenset({"openid", "profile", "email", "offline_access"})
    auth_methods: frozenset[AuthMethod] = SUPPORTED_AUTH_METHODS

    def allows_host(self, host: str) -> bool:
        if not self.redirect_uri_hosts:
            return True
        for allowed in self.redirect_uri_hosts:
            if allowed.startswith("*."):
                if host.endswith(allowed[1:]) and len(host) > len(allowed) - 1:
                    return True
            elif host == allowed:
                return True
        return False


@dataclass(frozen=True, slots=True)
class ClientMetadata:
    """A registration request that obeys the policy, as the client registry takes it."""

    redirect_uris: tuple[str, ...]
    token_endpoint_auth_method: AuthMethod
    grant_types: tuple[str, ...]
    response_types: tuple[str, ...]
    scopes: tuple[str, ...]
    client_name: str = ""
    post_logout_redirect_uris: tuple[str, ...] = ()
    extra: Mapping[str, str | list[str]] = field(default_factory=dict)

    @property
    def public(self) -> bool:
        return self.token_endpoint_auth_method == "none"

    def extra_json(self) -> str:
        return json.dumps(dict(self.extra), separators=(",", ":"), sort_keys=True)


def parse_document(body: bytes, content_type: str) -> dict[str, Any]:
    """Step 1: the body as a JSON object, or :class:`InvalidClientMetadataError`."""
    if content_type != "application/json":
        raise InvalidClientMetadataError(
            "the request body must be a JSON object (application/json)"
        )
    if len(body) > MAX_DOCUMENT_BYTES:
        raise InvalidClientMetadataError(f"the client metadata exceeds {MAX_DOCUMENT_BYTES} bytes")
    try:
        document = json.loads(body, object_pairs_hook=_no_repeats)
    except _Repeated:
        raise InvalidClientMetadataError("a client metadata member is repeated") from None
    except (ValueError, RecursionError):
        raise InvalidClientMetadataError("the request body is not valid JSON") from None
    if not isinstance(document, dict):
        raise InvalidClientMetadataError("the client metadata must be a JSON object")
    if _depth(document) > MAX_DEPTH:
        raise InvalidClientMetadataError(f"the client metadata is nested deeper than {MAX_DEPTH}")
    return document


class _Repeated(Exception):
    pass


def _no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    names = [name for name, _ in pairs]
    if len(names) != len(set(names)):
        raise _Repeated
    return dict(pairs)


def _depth(document: object) -> int:
    deepest = 0
    stack: list[tuple[object, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            deepest = max(deepest, depth)
            if deepest > MAX_DEPTH:
                return deepest
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)
    return deepest


def read_metadata(document: Mapping[str, Any], policy: RegistrationPolicy) -> ClientMetadata:
    """Steps 2-5 on a parsed document: the metadata to register, or the RFC 7591 §3.2.2 error
    naming the first member that cannot be accepted."""
    _software_statement(document.get("software_statement"))
    for member in ("jwks", "jwks_uri"):
        if member in document:
            raise InvalidClientMetadataError(
                f"{member} is not accepted: this server supports no key-based client "
                "authentication (private_key_jwt); use client_secret_basic, "
                "client_secret_post or none"
            )
    method = _auth_method(document, policy)
    grants = _grant_types(document, policy)
    responses = _response_types(document, grants)
    redirect_uris = _redirect_uris(document, "redirect_uris", policy)
    if "authorization_code" in grants and not redirect_uris:
        # OAuth 2.1 §2.3.1: a client of the authorization endpoint registers its redirect URIs.
        raise InvalidRedirectUriError("redirect_uris is required for the authorization_code grant")
    if redirect_uris and "authorization_code" not in grants:
        raise InvalidRedirectUriError("redirect_uris need the authorization_code grant")
    post_logout = _redirect_uris(document, "post_logout_redirect_uris", policy)
    if post_logout and "authorization_code" not in grants:
        raise InvalidRedirectUriError("post_logout_redirect_uris need the authorization_code grant")
    if method == "none" and "client_credentials" in grants:
        raise InvalidClientMetadataError(
            "client_credentials needs a client secret (OAuth 2.1 §4.2): not with "
            "token_endpoint_auth_method none"
        )
    extra: dict[str, str | list[str]] = {}
    for name in _WEB_URIS:
        if (uri := _web_uri(document, name)) is not None:
            extra[name] = uri
    if (contacts := _contacts(document)) is not None:
        extra["contacts"] = contacts
    for name in ("software_id", "software_version"):
        if (text := _text(document, name)) is not None:
            extra[name] = text
    return ClientMetadata(
        redirect_uris=redirect_uris,
        token_endpoint_auth_method=method,
        grant_types=grants,
        response_types=responses,
        scopes=_scopes(document, policy, grants),
        client_name=_text(document, "client_name") or "",
        post_logout_redirect_uris=post_logout,
        extra=extra,
    )


def _software_statement(value: object) -> None:
    if value is None:
        return
    # RFC 7591 §2.3: a JWT (RFC 7519). Its signature is never checked: no issuer is approved,
    # so even a valid one could not be used; its form is checked only to name the right error.
    parts = value.split(".") if isinstance(value, str) and len(value) <= 8192 else []
    if len(parts) != 3 or not all(_JWS_PART.fullmatch(part) for part in parts):
        raise InvalidSoftwareStatement("software_statement must be a signed JWT")
    raise UnapprovedSoftwareStatement(
        "this server approves no software statement issuer; register without software_statement"
    )


def _strings(document: Mapping[str, Any], name: str, *, limit: int) -> tuple[str, ...] | None:
    value = document.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidClientMetadataError(f"{name} must be an array of strings")
    if len(value) > limit:
        raise InvalidClientMetadataError(f"{name} has more than {limit} entries")
    if len(set(value)) != len(value):
        raise InvalidClientMetadataError(f"{name} lists a value twice")
    return tuple(value)


def _string(document: Mapping[str, Any], name: str) -> str | None:
    value = document.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidClientMetadataError(f"{name} must be a string")
    return value


def _auth_method(document: Mapping[str, Any], policy: RegistrationPolicy) -> AuthMethod:
    # RFC 7591 §2: "If unspecified or omitted, the default is "client_secret_basic"".
    value = _string(document, "token_endpoint_auth_method") or "client_secret_basic"
    if value not in SUPPORTED_AUTH_METHODS:
        raise InvalidClientMetadataError(
            f"token_endpoint_auth_method {value[:40]!r} is not supported (client_secret_basic, "
            "client_secret_post, none)"
        )
    method: AuthMethod = value
    if method not in policy.auth_methods:
        raise InvalidClientMetadataError(
            f"token_endpoint_auth_method {method} is not allowed for dynamically registered clients"
        )
    return method


def _grant_types(document: Mapping[str, Any], policy: RegistrationPolicy) -> tuple[str, ...]:
    # RFC 7591 §2: "If omitted, the default behavior is that the client will use only the
    # "authorization_code" Grant Type."
    grants = _strings(document, "grant_types", limit=10)
    if grants is None:
        grants = ("authorization_code",)
    if not grants:
        raise InvalidClientMetadataError("grant_types must not be empty")
    for grant in grants:
        if grant not in SUPPORTED_GRANT_TYPES:
            raise InvalidClientMetadataError(f"grant type {grant[:60]!r} is not supported")
        if grant not in policy.grant_types:
            raise InvalidClientMetadataError(
                f"grant type {grant} is not allowed for dynamically registered clients"
            )
    if "refresh_token" in grants and "authorization_code" not in grants:
        raise InvalidClientMetadataError("the refresh_token grant needs authorization_code")
    return grants


def _response_types(document: Mapping[str, Any], grants: tuple[str, ...]) -> tuple[str, ...]:
    """RFC 7591 §2.1: "the authorization server MUST ensure that [grant_types and
    response_types] are consistent": ``code`` exactly when ``authorization_code``. When
    omitted, ``code`` with the authorization_code grant and nothing without (§2 defaults to
    ``code``, which a client_credentials-only client could then never register)."""
    code = "authorization_code" in grants
    responses = _strings(document, "response_types", limit=5)
    if responses is None:
        return ("code",) if code else ()
    for response in responses:
        if response != "code":
            # Only `code` exists here (no implicit flow: RFC 9700 §2.1.2).
            raise InvalidClientMetadataError(f"response type {response[:40]!r} is not supported")
    if code != ("code" in responses):
        raise InvalidClientMetadataError(
            "response_types and grant_types disagree: the code response type goes with the "
            "authorization_code grant (RFC 7591 §2.1)"
        )
    return responses


def _redirect_uris(
    document: Mapping[str, Any], name: str, policy: RegistrationPolicy
) -> tuple[str, ...]:
    try:
        uris = _strings(document, name, limit=MAX_REDIRECT_URIS)
    except InvalidClientMetadataError as exc:
        raise InvalidRedirectUriError(exc.description) from None
    for uri in uris or ():
        try:
            check_redirect_uri(uri)
        except InvalidRedirectUri as exc:
            raise InvalidRedirectUriError(f"{name}: {uri[:100]!r} {exc}") from None
        scheme = uri.split(":", 1)[0]
        if scheme in ("https", "http"):
            allowed = scheme in policy.redirect_uri_schemes
        else:
            allowed = _PRIVATE_USE in policy.redirect_uri_schemes
            allowed = allowed or scheme in policy.redirect_uri_schemes
        if not allowed:
            raise InvalidRedirectUriError(
                f"{name}: the scheme {scheme[:40]}: is not allowed for dynamically "
                "registered clients"
            )
        host = urlsplit(uri).hostname or ""
        if scheme == "https" and not policy.allows_host(host):
            raise InvalidRedirectUriError(
                f"{name}: the host {host[:100]} is not allowed for dynamically registered clients"
            )
    return uris or ()


def _scopes(
    document: Mapping[str, Any], policy: RegistrationPolicy, grants: tuple[str, ...]
) -> tuple[str, ...]:
    value = _string(document, "scope")
    usable = set(policy.scopes)
    if "authorization_code" not in grants:
        usable -= USER_SCOPES  # they need a signed-in user
    if "refresh_token" not in grants:
        usable.discard("offline_access")
    if value is None:
        # RFC 7591 §2: "If omitted, an authorization server MAY register a client with a
        # default set of scopes": every scope of the policy the grants can use.
        return tuple(sorted(usable))
    if len(value) > MAX_SCOPE_LENGTH:
        raise InvalidClientMetadataError(f"scope is longer than {MAX_SCOPE_LENGTH} characters")
    try:
        scopes = parse_scope(value)
    except InvalidScope as exc:
        raise InvalidClientMetadataError(f"scope: {exc.description}") from None
    for scope in scopes:
        if scope not in policy.scopes:
            raise InvalidClientMetadataError(
                f"scope {scope} is not allowed for dynamically registered clients"
            )
        if scope not in usable:
            raise InvalidClientMetadataError(f"scope {scope} needs a grant type this client lacks")
    return scopes


def _text(document: Mapping[str, Any], name: str) -> str | None:
    value = _string(document, name)
    if value is None:
        return None
    if not value or len(value) > MAX_TEXT:
        raise InvalidClientMetadataError(f"{name} must be 1 to {MAX_TEXT} characters")
    if _NOT_TEXT.search(value) or value != value.strip():
        raise InvalidClientMetadataError(
            f"{name} contains a control, invisible or bidirectional formatting character, or "
            "surrounding spaces"
        )
    return value


def _web_uri(document: Mapping[str, Any], name: str) -> str | None:
    """A page or image the consent page could link: https, and otherwise held to the rules
    of a redirect URI (no whitespace, userinfo, fragment; never ``javascript:``)."""
    value = _string(document, name)
    if value is None:
        return None
    try:
        check_redirect_uri(value)
    except InvalidRedirectUri as exc:
        raise InvalidClientMetadataError(f"{name}: {exc}") from None
    if not value.startswith("https://") or len(value) > MAX_REDIRECT_URI_LENGTH:
        raise InvalidClientMetadataError(f"{name} must be an https URL")
    return value


def _contacts(document: Mapping[str, Any]) -> list[str] | None:
    contacts = _strings(document, "contacts", limit=MAX_CONTACTS)
    if contacts is None:
        return None
    for contact in contacts:
        if (
            len(contact) > MAX_CONTACT
            or not _CONTACT.fullmatch(contact)
            or _NOT_TEXT.search(contact)
        ):
            raise InvalidClientMetadataError("contacts must be e-mail addresses")
    return list(contacts)


def client_document(
    client: Client, extra: Mapping[str, Any], *, fields: Iterable[tuple[str, Any]] = ()
) -> dict[str, Any]:
    """The client information response (RFC 7591 §3.2.1, RFC 7592 §3) for a stored client:
    its metadata as registered, ``client_id_issued_at`` and, for a confidential client,
    ``client_secret_expires_at`` 0 (REQUIRED when a secret was issued; 0: it does not
    expire). ``fields`` adds the rest (the secret, once; the management URI and token)."""
    method: str = "none"
    if client.client_type == "confidential":
        method = (
            "client_secret_basic"
            if "client_secret_basic" in client.auth_methods
            else "client_secret_post"
        )
    document: dict[str, Any] = {
        "client_id": client.client_id,
        "client_id_issued_at": client.created_at,
    }
    if client.client_type == "confidential":
        document["client_secret_expires_at"] = 0
    document |= {
        "token_endpoint_auth_method": method,
        "grant_types": sorted(client.grant_types),
        "response_types": ["code"] if "authorization_code" in client.grant_types else [],
        "redirect_uris": list(client.redirect_uris),
        "scope": " ".join(sorted(client.scopes)),
    }
    if client.name:
        document["client_name"] = client.name
    if client.post_logout_redirect_uris:
        document["post_logout_redirect_uris"] = list(client.post_logout_redirect_uris)
    document |= {name: extra[name] for name in EXTRA_MEMBERS if name in extra}
    document |= dict(fields)
    return document
