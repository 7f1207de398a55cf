"""Pydantic models: validation of JSON request bodies and the OpenAPI description of every body."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from oauth_server.resource.restaurants import ADDRESS_MAX, NAME_MAX, TIME_MAX

__all__ = [
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

NameText = Annotated[str, Field(min_length=1, max_length=NAME_MAX, pattern=r"\S")]
AddressText = Annotated[str, Field(min_length=1, max_length=ADDRESS_MAX, pattern=r"\S")]
TimeText = Annotated[str, Field(max_length=TIME_MAX, examples=["09:00"])]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ErrorBody(BaseModel):
    """RFC 6749 §5.2 / RFC 6750 §3 error body."""

    error: str
    error_description: str | None = None


class Message(BaseModel):
    message: Literal["Successful"]


class TokenRequest(BaseModel):
    """RFC 6749 §4.4.2 token request (form) — or the seed's JSON object with the same members."""

    grant_type: Literal["client_credentials"]
    scope: str | None = Field(default=None, max_length=2048)
    resource: str | None = Field(
        default=None, max_length=2048, description="RFC 8707 resource indicator (audience)"
    )
    client_id: str | None = Field(default=None, max_length=512)
    client_secret: str | None = Field(default=None, max_length=512)


class TokenResponse(BaseModel):
    """RFC 6749 §5.1 successful token response."""

    token_type: Literal["Bearer"]
    expires_in: int
    access_token: str
    scope: str | None = Field(default=None, description="present when it differs from the request")


class IntrospectionRequest(BaseModel):
    """RFC 7662 §2.1."""

    token: str = Field(max_length=8192)
    token_type_hint: str | None = None
    client_id: str | None = None
    client_secret: str | None = None


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


class RevocationRequest(BaseModel):
    """RFC 7009 §2.1."""

    token: str = Field(max_length=8192)
    token_type_hint: Literal["access_token", "refresh_token"] | None = None
    client_id: str | None = None
    client_secret: str | None = None


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
