"""One module per grant type; :func:`default_grants` builds the dispatch table."""

from __future__ import annotations

from oauth_server.oauth.grants.base import Grant
from oauth_server.oauth.grants.client_credentials import ClientCredentialsGrant

__all__ = ["ClientCredentialsGrant", "Grant", "default_grants"]


def default_grants(*, default_resource: str) -> dict[str, Grant]:
    """The grants this server supports; ``default_resource`` is the audience of tokens whose
    request names no resource (RFC 8707)."""
    grants: list[Grant] = [ClientCredentialsGrant(default_resource=default_resource)]
    return {grant.grant_type: grant for grant in grants}
