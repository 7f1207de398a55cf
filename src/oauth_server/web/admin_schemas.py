"""Pydantic models of the admin API: request validation and the OpenAPI description.

Every string is free of control characters and lone surrogates (neither database stores a NUL,
PostgreSQL no invalid Unicode): such a value is a 422 naming its field, never a 500. Unknown
members are refused (422), so a misspelt field is not silently ignored.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

__all__ = [
    "AdminError",
    "AuditEvent",
    "AuditPage",
    "ClientCreate",
    "ClientPage",
    "ClientPatch",
    "ClientView",
    "ClientWithSecret",
    "ConsentList",
    "KeyList",
    "KeyRotate",
    "KeyRotated",
    "PasswordReset",
    "SessionsEnded",
    "UserCreate",
    "UserPage",
    "UserPatch",
    "UserTokensRevoked",
    "UserView",
]

_UNSTORABLE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _storable(value: str) -> str:
    if _UNSTORABLE.search(value):
        raise ValueError("must not contain control characters or invalid Unicode")
    return value


def _encodable(value: str) -> str:
    if _SURROGATE.search(value):
        raise ValueError("must be valid Unicode")
    return value


Short = Annotated[str, Field(max_length=255), AfterValidator(_storable)]
Uri = Annotated[str, Field(max_length=2000), AfterValidator(_storable)]
ClientId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._~-]+$")]
ScopeList = Annotated[
    list[Annotated[str, Field(max_length=128), AfterValidator(_storable)]], Field(max_length=50)
]
UriList = Annotated[list[Uri], Field(max_length=20)]
Password = Annotated[str, Field(min_length=1, max_length=1024), AfterValidator(_encodable)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AdminError(BaseModel):
    """Every admin API error: ``error`` and ``error_description`` (RFC 6749 §5.2's shape);
    on a 422 also ``fields``, each refused field's name with the reason."""

    error: str
    error_description: str | None = None
    fields: dict[str, str] | None = Field(
        default=None, description="on 422: field name → why it was refused"
    )


class ClientCreate(_Body):
    client_id: ClientId | None = Field(default=None, description="default: random")
    name: Short = ""
    client_type: Literal["confidential", "public"] = "confidential"
    grant_types: (
        list[Literal["client_credentials", "authorization_code", "refresh_token"]] | None
    ) = Field(
        default=None,
        max_length=3,
        description="default: client_credentials; for a public client authorization_code and "
        "refresh_token",
    )
    scopes: ScopeList = []
    default_scopes: ScopeList | None = Field(default=None, description="default: all scopes")
    token_format: Literal["jwt", "opaque"] = "jwt"
    resources: UriList = []
    introspect: UriList = []
    auth_methods: list[Literal["client_secret_basic", "client_secret_post"]] | None = Field(
        default=None, max_length=2
    )
    redirect_uris: UriList = []
    post_logout_redirect_uris: UriList = []
    require_consent: bool = True
    require_pkce: bool = True
    admin: bool = Field(
        default=False,
        description="an admin client: adds the `admin` scope, which nothing else gives",
    )


class ClientPatch(_Body):
    """Fields left out stay as they are."""

    name: Short | None = None
    scopes: ScopeList | None = None
    default_scopes: ScopeList | None = None
    redirect_uris: UriList | None = None
    post_logout_redirect_uris: UriList | None = None
    require_consent: bool | None = None


class ClientView(BaseModel):
    client_id: str
    name: str
    client_type: Literal["confidential", "public"]
    grant_types: list[str]
    scopes: list[str]
    default_scopes: list[str]
    token_format: Literal["jwt", "opaque"]
    resources: list[str]
    introspect: list[str]
    auth_methods: list[str]
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    require_consent: bool
    require_pkce: bool
    admin: bool
    created_at: int
    updated_at: int


class ClientWithSecret(ClientView):
    client_secret: str | None = Field(
        description="shown in this response only, never again (null for a public client)"
    )


class ClientPage(BaseModel):
    items: list[ClientView]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null at the end"
    )


class UserCreate(_Body):
    username: Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_storable)]
    password: Password
    name: Short = ""
    given_name: Short = ""
    family_name: Short = ""
    preferred_username: Short | None = None
    email: Short = ""
    email_verified: bool = False
    is_admin: bool = False


class UserPatch(_Body):
    """Profile claims; left out: unchanged, ``""``: cleared."""

    name: Short | None = None
    given_name: Short | None = None
    family_name: Short | None = None
    preferred_username: Short | None = None
    email: Short | None = None
    email_verified: bool | None = None


class UserView(BaseModel):
    user_id: str
    username: str
    name: str
    given_name: str
    family_name: str
    preferred_username: str
    email: str
    email_verified: bool
    disabled: bool
    is_admin: bool
    created_at: int
    updated_at: int


class UserPage(BaseModel):
    items: list[UserView]
    next_cursor: str | None


class PasswordReset(_Body):
    password: Password


class ConsentView(BaseModel):
    client_id: str
    scopes: list[str]
    updated_at: int


class ConsentList(BaseModel):
    items: list[ConsentView]


class SessionsEnded(BaseModel):
    sessions_ended: int


class UserTokensRevoked(BaseModel):
    refresh_families_revoked: int
    sessions_ended: int


class KeyView(BaseModel):
    kid: str
    alg: str
    generation: int
    state: Literal["pending", "active", "retired", "expired", "removed", "refused"]
    activates_at: int
    signs_until: int | None
    verifies_until: int | None


class KeyList(BaseModel):
    items: list[KeyView]


class KeyRotate(_Body):
    immediately: bool = Field(default=False, description="sign with the new key at once")


class KeyRotated(BaseModel):
    kid: str | None = Field(description="null when another instance created the key first")


class AuditEvent(BaseModel):
    at_ms: int
    kind: str
    chain_id: str
    seq: int
    data: dict[str, str | int]


class AuditPage(BaseModel):
    items: list[AuditEvent]
    next_cursor: str | None
