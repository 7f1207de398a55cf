"""Which security events the core records, through an injected recorder — no HTTP, no database."""

from __future__ import annotations

from urllib.parse import urlencode

import orjson
import pytest

from oauth_server.clock import FrozenClock
from oauth_server.errors import InvalidClient
from oauth_server.oauth.client_auth import ClientAuthenticator
from oauth_server.oauth.clients import ClientDirectory
from oauth_server.oauth.endpoints.token import TokenEndpoint
from oauth_server.oauth.grants import default_grants
from oauth_server.oauth.http import OAuthRequest
from oauth_server.oauth.tokens.issue import OpaqueTokenIssuer, TokenService
from oauth_server.storage.models import Client
from tests.fakes import MemoryAudit, MemoryClients, MemoryTokens, make_client
from tests.helpers import FORM_CONTENT_TYPE, token_codec

PUBLIC = Client(client_id="public", secret_hash=None)


def request(params: dict[str, str], authorization: str | None = None) -> OAuthRequest:
    headers = {"content-type": FORM_CONTENT_TYPE}
    if authorization is not None:
        headers["authorization"] = authorization
    return OAuthRequest(
        "POST",
        "/oauth/token",
        headers=headers,
        body=urlencode(params).encode(),
        client_ip="192.0.2.7",
    )


def endpoint(audit: MemoryAudit, *, audit_issued: bool = False) -> TokenEndpoint:
    directory = ClientDirectory(MemoryClients(make_client("app", "s3cret"), PUBLIC))
    return TokenEndpoint(
        authenticator=ClientAuthenticator(directory, audit=audit),
        grants=default_grants(default_resource="https://api.example"),
        tokens=TokenService(
            {
                "opaque": OpaqueTokenIssuer(
                    MemoryTokens(), codec=token_codec(FrozenClock()), clock=FrozenClock(), ttl=60
                )
            }
        ),
        audit=audit,
        audit_issued=audit_issued,
    )


GRANT = {"grant_type": "client_credentials"}


@pytest.mark.parametrize(
    ("params", "authorization", "client_id", "reason"),
    [
        ({"client_id": "app", "client_secret": "wrong"}, None, "app", "wrong secret"),
        ({"client_id": "nobody", "client_secret": "s3cret"}, None, "nobody", "unknown client"),
        ({"client_id": "public", "client_secret": "x"}, None, "public", "public client"),
        ({}, None, "", "client authentication required"),
        ({}, "Basic !!!", "", "malformed Basic credentials"),
        ({}, "Bearer abc", "", "unsupported client authentication scheme; use Basic"),
        ({"client_id": "app", "client_secret": "x" * 600}, None, "app", "credentials too long"),
    ],
)
async def test_client_authentication_failures_are_recorded(
    params: dict[str, str], authorization: str | None, client_id: str, reason: str
) -> None:
    audit = MemoryAudit()
    with pytest.raises(InvalidClient):
        await endpoint(audit).handle(request({**GRANT, **params}, authorization))
    assert audit.events == [
        (
            "client_auth_failed",
            {
                "client_id": client_id,
                "ip": "192.0.2.7",
                "endpoint": "/oauth/token",
                "reason": reason,
            },
        )
    ]


async def test_token_issued_is_recorded_only_when_asked() -> None:
    audit = MemoryAudit()
    params = {**GRANT, "client_id": "app", "client_secret": "s3cret"}
    await endpoint(audit).handle(request(params))
    assert audit.events == []  # the default: nothing on the hot path

    response = await endpoint(audit, audit_issued=True).handle(request(params))
    token = orjson.loads(response.body)["access_token"]
    parsed = token_codec(FrozenClock()).parse("access_token", token)
    assert parsed is not None
    selector = parsed[0]
    assert audit.events == [
        (
            "token_issued",
            {
                "client_id": "app",
                "token_id": selector.hex(),  # names the token; the verifier is not in it
                "token_type": "opaque",
                "scope": "restaurent",
                "ip": "192.0.2.7",
            },
        )
    ]
