"""Issuance returns a TokenSet; the token response carries what the set holds."""

from __future__ import annotations

import orjson

from oauth_server.oauth.endpoints.token import TokenEndpoint
from oauth_server.oauth.tokens.issue import AccessToken, Authorization, TokenService, TokenSet
from tests.fakes import make_client

ACCESS = AccessToken(access_token="at", expires_in=60, scope=("a",), token_id="j1")


class _Issuer:
    def __init__(self) -> None:
        self.seen: list[Authorization] = []

    async def issue(self, authorization: Authorization) -> AccessToken:
        self.seen.append(authorization)
        return ACCESS


async def test_client_credentials_issue_only_an_access_token() -> None:
    issuer = _Issuer()
    service = TokenService({"jwt": issuer, "opaque": issuer})
    authorization = Authorization(make_client(), "app", ("a",), ("https://rs",))
    tokens = await service.issue(authorization)
    assert tokens == TokenSet(ACCESS)
    assert tokens.refresh_token is None
    assert tokens.id_token is None
    assert issuer.seen == [authorization]


def test_the_response_carries_refresh_and_id_tokens_when_issued() -> None:
    plain = orjson.loads(TokenEndpoint.token_response(TokenSet(ACCESS), requested_scope="a").body)
    assert plain == {"token_type": "Bearer", "expires_in": 60, "access_token": "at"}
    full = TokenSet(ACCESS, refresh_token="rt", id_token="it")
    body = orjson.loads(TokenEndpoint.token_response(full, requested_scope="a").body)
    assert body == {**plain, "refresh_token": "rt", "id_token": "it"}
