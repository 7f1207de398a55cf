"""Pydantic models: validation of JSON request bodies and the OpenAPI description of every body."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from oauth_server.oauth.params import MAX_PARAM_LENGTH
from oauth_server.resource.restaurants import ADDRESS_MAX, NAME_MAX, TIME_MAX

__all__ = [
    "TEXT_PATTERN",
    "VISIBLE_TEXT_PATTERN",
    "ClientInformation",
    "ClientMetadataRequest",
    "ErrorBody",
    "IntrospectionRequest",
    "IntrospectionResponse",
    "Message",
    "ObjectId",
    "RestaurantCreate",
    "RestaurantFull",
    "RestaurantList",
    "RestaurantPage",
    "RestaurantPatch",
    "RestaurantPublic",
    "RestaurantView",
    "RevocationRequest",
    "Routine",
    "RoutinePatch",
    "TokenRequest",
    "TokenResponse",
]

# What the restaurants domain accepts in a text field (resource.restaurants.check_changes, which
# enforces it): no control character but tab; Name and Address also need a character that is not
# white space (str.isspace). Spelled with explicit escapes, so the pattern means the same in
# Python and in JSON Schema (ECMA-262).
_CONTROL = r"\x00-\x08\x0a-\x1f"
_SPACE = r"\x09-\x0d\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
TEXT_PATTERN = rf"^[^{_CONTROL}]*$"
VISIBLE_TEXT_PATTERN = rf"^[^{_CONTROL}]*[^{_CONTROL}{_SPACE}][^{_CONTROL}]*$"

NameText = Annotated[
    str,
    Field(min_length=1, max_length=NAME_MAX, json_schema_extra={"pattern": VISIBLE_TEXT_PATTERN}),
]
AddressText = Annotated[
    str,
    Field(
        min_length=1, max_length=ADDRESS_MAX, json_schema_extra={"pattern": VISIBLE_TEXT_PATTERN}
    ),
]
TimeText = Annotated[
    str,
    Field(max_length=TIME_MAX, examples=["09:00"], json_schema_extra={"pattern": TEXT_PATTERN}),
]


# Any OAuth parameter, known or not: parse_body refuses longer ones.
Param = Annotated[str, Field(max_length=MAX_PARAM_LENGTH)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ErrorBody(BaseModel):
    """RFC 6749 §5.2 / RFC 6750 §3 error body."""

    error: str
    error_description: str | None = None


class Message(BaseModel):
    message: Literal["Successful"]


class _OAuthParams(BaseModel):
    """Parameters of an OAuth endpoint. Unknown ones are ignored (OAuth 2.1 §3.1), but like the
    known ones each is a single string of limited length (oauth.params): a repeated parameter is
    ``invalid_request``, and an empty one counts as omitted (as does ``null`` in a JSON body)."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, Param | None] = Field(init=False)


class TokenRequest(_OAuthParams):
    """RFC 6749 §4.4.2 token request (form) — or the seed's JSON object with the same members."""

    grant_type: Literal["client_credentials"]
    scope: Param | None = None
    resource: Param | None = Field(
        default=None, description="RFC 8707 resource indicator (audience)"
    )
    client_id: str | None = Field(default=None, max_length=512)
    client_secret: str | None = Field(default=None, max_length=512)


class TokenResponse(BaseModel):
    """RFC 6749 §5.1 successful token response."""

    token_type: Literal["Bearer"]
    expires_in: int
    access_token: str
    scope: str | None = Field(default=None, description="present when it differs from the request")


class IntrospectionRequest(_OAuthParams):
    """RFC 7662 §2.1."""

    token: Param
    token_type_hint: Param | None = None
    client_id: str | None = Field(default=None, max_length=512)
    client_secret: str | None = Field(default=None, max_length=512)


class IntrospectionResponse(BaseModel):
    """RFC 7662 §2.2; only `active` when the token is not active."""

    active: bool
    scope: str | None = None
    client_id: str | None = None
    token_type: str | None = None
    exp: int | None = None
    iat: int | None = None
    nbf: int | None = None
    sub: str | None = None
    aud: str | list[str] | None = None
    iss: str | None = None
    jti: str | None = None


class RevocationRequest(_OAuthParams):
    """RFC 7009 §2.1."""

    token: Param
    token_type_hint: Param | None = Field(
        default=None,
        description="`access_token` or `refresh_token`; only a hint, so any other value is "
        "ignored (RFC 7009 §2.1)",
    )
    client_id: str | None = Field(default=None, max_length=512)
    client_secret: str | None = Field(default=None, max_length=512)


class ObjectId(BaseModel):
    oid: str = Field(alias="$oid", pattern=r"^[0-9a-f]{24}$")


class Routine(_Strict):
    open: TimeText = ""
    close: TimeText = ""


class RoutinePatch(_Strict):
    open: TimeText | None = None
    close: TimeText | None = None


class RestaurantFull(BaseModel):
    """The full document (with a token holding a read scope)."""

    id: ObjectId = Field(alias="_id")
    Name: str
    Address: str
    routine: Routine


class RestaurantPublic(BaseModel):
    """The public view (without credentials)."""

    Name: str
    Address: str


class RestaurantView(RootModel[RestaurantFull | RestaurantPublic]):
    """One restaurant: the full document with a read scope, the public view without a token."""


class RestaurantList(RootModel[list[RestaurantFull | RestaurantPublic]]):
    """The seed route's answer: a JSON array of documents."""


class RestaurantPage(BaseModel):
    items: list[RestaurantFull | RestaurantPublic]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null at the end"
    )


class RestaurantCreate(_Strict):
    Name: NameText
    Address: AddressText
    routine: Routine = Routine()


class RestaurantPatch(_Strict):
    Name: NameText | None = None
    Address: AddressText | None = None
    routine: RoutinePatch | None = None


GrantTypeName = Literal["authorization_code", "refresh_token", "client_credentials"]


class ClientMetadataRequest(BaseModel):
    """RFC 7591 §2 client metadata: what a registration (or, with ``client_id``, an RFC 7592
    update) may send. Unknown members are ignored; ``jwks``/``jwks_uri`` and software
    statements are refused."""

    model_config = ConfigDict(extra="allow")

    redirect_uris: list[str] | None = Field(None, max_length=10)
    token_endpoint_auth_method: (
        Literal["client_secret_basic", "client_secret_post", "none"] | None
    ) = None
    grant_types: (
        list[Literal["authorization_code", "refresh_token", "client_credentials"]] | None
    ) = None
    response_types: list[Literal["code"]] | None = None
    client_name: str | None = Field(None, max_length=200)
    client_uri: str | None = None
    logo_uri: str | None = None
    scope: str | None = Field(None, max_length=1000)
    contacts: list[str] | None = Field(None, max_length=5)
    tos_uri: str | None = None
    policy_uri: str | None = None
    post_logout_redirect_uris: list[str] | None = Field(None, max_length=10)
    software_id: str | None = Field(None, max_length=200)
    software_version: str | None = Field(None, max_length=200)
    client_id: str | None = Field(None, description="RFC 7592 updates only: REQUIRED there")
    client_secret: str | None = Field(
        None, description="RFC 7592 updates only: if sent, must be the current secret"
    )


class ClientInformation(BaseModel):
    """RFC 7591 §3.2.1 / RFC 7592 §3 client information response."""

    model_config = ConfigDict(extra="allow")

    client_id: str
    client_secret: str | None = Field(None, description="Only in the registration response")
    client_id_issued_at: int
    client_secret_expires_at: int | None = Field(None, description="0: does not expire")
    registration_access_token: str
    registration_client_uri: str
    token_endpoint_auth_method: str
    grant_types: list[str]
    response_types: list[str]
    redirect_uris: list[str]
    scope: str
