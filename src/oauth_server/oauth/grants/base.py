"""What every grant provides: its ``grant_type`` and a ``validate`` step."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from oauth_server.oauth.client_auth import AuthenticatedClient
from oauth_server.oauth.tokens.issue import Authorization

__all__ = ["Grant"]


class Grant(Protocol):
    @property
    def grant_type(self) -> str: ...

    async def validate(
        self, *, client: AuthenticatedClient, params: Mapping[str, str]
    ) -> Authorization:
        """Check the grant-specific parameters and decide subject and scope, or raise."""
        ...
