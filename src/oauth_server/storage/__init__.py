"""Storage: async repositories by role, and the SQL backend the database URL selects."""

from __future__ import annotations

from oauth_server.storage.models import (
    AccessTokenRecord,
    AuditRecord,
    AuthorizationCode,
    BrowserSession,
    Change,
    Client,
    ClientRegistration,
    ClientRevocation,
    CodeRedemption,
    Consent,
    FamilyRevocation,
    InitialAccessToken,
    Interaction,
    InteractionLogin,
    IssuedToken,
    RefreshFamily,
    RefreshRotation,
    RefreshTokenRecord,
    Restaurant,
    RestaurantChanges,
    RevokedToken,
    SigningKeyRecord,
    TokenFormat,
    User,
    UserClientGrant,
    UserProfileChanges,
)
from oauth_server.storage.protocols import AlreadyExists, Storage
from oauth_server.storage.sql.storage import SqlStorage

__all__ = [
    "AccessTokenRecord",
    "AlreadyExists",
    "AuditRecord",
    "AuthorizationCode",
    "BrowserSession",
    "Change",
    "Client",
    "ClientRegistration",
    "ClientRevocation",
    "CodeRedemption",
    "Consent",
    "FamilyRevocation",
    "InitialAccessToken",
    "Interaction",
    "InteractionLogin",
    "IssuedToken",
    "RefreshFamily",
    "RefreshRotation",
    "RefreshTokenRecord",
    "Restaurant",
    "RestaurantChanges",
    "RevokedToken",
    "SigningKeyRecord",
    "SqlStorage",
    "Storage",
    "TokenFormat",
    "User",
    "UserClientGrant",
    "UserProfileChanges",
    "open_storage",
]


def open_storage(url: str, *, pool_size: int = 10) -> SqlStorage:
    """Open the backend that ``url`` names (``sqlite:///…`` or ``postgresql://…``)."""
    return SqlStorage.from_url(url, pool_size=pool_size)
