"""One module per grant type; :func:`default_grants` builds the dispatch table."""

from __future__ import annotations

from oauth_server.oauth.grants.authorization_code import AuthorizationCodeGrant
from oauth_server.oauth.grants.base import Grant
from oauth_server.oauth.grants.client_credentials import ClientCredentialsGrant
from oauth_server.oauth.grants.refresh_token import RefreshTokenGrant
from oauth_server.oauth.grants.signin import SignInGrants

__all__ = [
    "AuthorizationCodeGrant",
    "ClientCredentialsGrant",
    "Grant",
    "RefreshTokenGrant",
    "SignInGrants",
    "default_grants",
]


def default_grants(
    *, default_resource: str, signin: SignInGrants | None = None
) -> dict[str, Grant]:
    """The grants this server supports; ``default_resource`` is the audience of tokens whose
    request names no resource (RFC 8707). With ``signin`` (the stores the user grants need),
    authorization_code and refresh_token too."""
    grants: list[Grant] = [ClientCredentialsGrant(default_resource=default_resource)]
    if signin is not None:
        grants += [AuthorizationCodeGrant(signin), RefreshTokenGrant(signin)]
    return {grant.grant_type: grant for grant in grants}
