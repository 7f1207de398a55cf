"""One module per grant type; :func:`default_grants` builds the dispatch table."""

from __future__ import annotations

from oauth_server.oauth.grants.base import Grant
from oauth_server.oauth.grants.client_credentials import ClientCredentialsGrant

__all__ = ["ClientCredentialsGrant", "Grant", "default_grants"]


def default_grants() -> dict[str, Grant]:
    grants: list[Grant] = [ClientCredentialsGrant()]
    return {grant.grant_type: grant for grant in grants}
