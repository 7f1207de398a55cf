"""The token endpoint core, driven with OAuthRequest objects — no HTTP, no database."""

from __future__ import annotations

import base64
import hashlib
import json
from urllib.parse import urlencode

import pytest

from oauth_server.clock import FrozenClock
from oauth_server.errors import (
    InvalidClient,
    InvalidRequest,
    InvalidScope,
    OAuthError,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from oauth_server.oauth.client_auth import ClientAuthenticator, parse_basic
from oauth_server.oauth.clients import ClientDirectory
from oauth_server.oauth.endpoints.token import TokenEndpoint
from oauth_server.oauth.grants import default_grants
from oauth_server.oauth.http import OAuthRequest
from oauth_server.oauth.tokens.issue import OpaqueTokenIssuer, TokenService
from tests.fakes import MemoryClients, MemoryTokens, make_client
from tests.helpers import FORM_CONTENT_TYPE, basic, token_codec

RESOURCE = "https://api.example"


def form_request(params: dict[str, str], headers: dict[str, str] | None = None) -> OAuthRequest:
    return OAuthRequest(
        "POST",
        "/oauth/token",
        headers={"content-type": FORM_CONTENT_TYPE, **(headers or {})},
        body=urlencode(params).encode(),
    )


@pytest.fixture
def tokens() -> MemoryTokens:
    return MemoryTokens()


@pytest.fixture
def clients() -> MemoryClients:
    return MemoryClients(
        make_client("app", "s3cret"),
        make_client("c:olon +%", "p@ss:wörd"),
        make_client("noscope", "x", scopes=("a",), default_scopes=()),
        make_client("other", "x", grant_types=frozenset({"authorization_code"})),
    )


@pytest.fixture
def endpoint(clients: MemoryClients, tokens: MemoryTokens) -> TokenEndpoint:
    issuer = OpaqueTokenIssuer(
        tokens, codec=token_codec(FrozenClock()), clock=FrozenClock(1000.0), ttl=3600
    )
    return TokenEndpoint(
        authenticator=ClientAuthenticator(ClientDirectory(clients)),
        grants=default_grants(default_resource=RESOURCE),
        tokens=TokenService({"opaque": issuer}),
    )


async def test_client_secret_post_issues_a_stored_hashed_token(
    endpoint: TokenEndpoint, tokens: MemoryTokens
) -> None:
    """Opaque tokens: 256 secret bits, stored as selector + SHA-256 of the secret only."""
    response = await endpoint.handle(
        form_request(
            {"grant_type": "client_credentials", "client_id": "app", "client_secret": "s3cret"}
        )
    )
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"
    body = json.loads(response.body)
    # The default scope was granted without being requested, so §5.1 requires `scope`.
    assert body == {
        "token_type": "Bearer",
        "expires_in": 3600,
        "access_token": body["access_token"],
        "scope": "restaurent",
    }
    value = body["access_token"]
    assert value.startswith("pos_at_")
    parsed = token_codec(FrozenClock()).parse("access_token", value)
    assert parsed is not None
    selector, verifier_hash = parsed
    raw = base64.urlsafe_b64decode(value.removeprefix("pos_at_") + "=")
    assert len(raw) - len(selector) == 32 + 6  # 256-bit secret part, 48-bit checksum
    record = tokens.rows[selector]
    assert record.verifier_hash == verifier_hash == hashlib.sha256(raw[12:44]).digest()
    assert (record.client_id, record.subject, record.scope) == ("app", "app", "restaurent")
    assert (record.issued_at, record.expires_at) == (1000, 4600)
    assert record.audience == RESOURCE
    stored = repr(tokens.rows)
    assert value not in stored
    assert raw[12:].hex() not in stored
    assert repr(raw[12:]) not in stored


async def test_seed_json_body_gives_the_seed_response(endpoint: TokenEndpoint) -> None:
    body = json.dumps(
        {
            "client_id": "app",
            "client_secret": "s3cret",
            "grant_type": "client_credentials",
            "scope": "restaurent",
        }
    ).encode()
    request = OAuthRequest(
        "POST", "/oauth/token", headers={"content-type": "application/json"}, body=body
    )
    response = await endpoint.handle(request)
    assert response.status == 200
    assert list(json.loads(response.body)) == ["token_type", "expires_in", "access_token"]


async def test_basic_auth_with_form_encoded_credentials(endpoint: TokenEndpoint) -> None:
    # A colon, space, plus and percent in the id (any VSCHAR, RFC 6749 Appendix A.1), and
    # non-ASCII in the secret, survive the form-encoding inside Basic.
    request = form_request(
        {"grant_type": "client_credentials", "scope": "restaurants:read"},
        {"authorization": basic("c:olon +%", "p@ss:wörd")},
    )
    response = await endpoint.handle(request)
    assert response.status == 200
    assert "scope" not in json.loads(response.body)


def test_parse_basic_decodes_form_encoding() -> None:
    assert parse_basic(basic("a+b c", "x:y%")) == ("a+b c", "x:y%")


@pytest.mark.parametrize(
    ("params", "headers", "error"),
    [
        ({}, {}, InvalidRequest),
        ({"client_id": "app", "client_secret": "s3cret"}, {}, InvalidRequest),
        (
            {"grant_type": "password", "client_id": "app", "client_secret": "s3cret"},
            {},
            UnsupportedGrantType,
        ),
        ({"grant_type": "client_credentials"}, {}, InvalidClient),
        ({"grant_type": "client_credentials", "client_id": "app"}, {}, InvalidClient),
        (
            {"grant_type": "client_credentials", "client_id": "app", "client_secret": "bad"},
            {},
            InvalidClient,
        ),
        (
            {"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "s3cret"},
            {},
            InvalidClient,
        ),
        (
            {"grant_type": "client_credentials"},
            {"authorization": basic("app", "bad")},
            InvalidClient,
        ),
        ({"grant_type": "client_credentials"}, {"authorization": "Basic !!!"}, InvalidClient),
        ({"grant_type": "client_credentials"}, {"authorization": "Bearer abc"}, InvalidClient),
        (
            {"grant_type": "client_credentials"},
            {"authorization": "Basic " + base64.b64encode(b"nocolon").decode()},
            InvalidClient,
        ),
        (
            {"grant_type": "client_credentials", "client_secret": "s3cret"},
            {"authorization": basic("app", "s3cret")},
            InvalidRequest,
        ),
        (
            {"grant_type": "client_credentials", "client_id": "other"},
            {"authorization": basic("app", "s3cret")},
            InvalidRequest,
        ),
        (
            {"grant_type": "client_credentials", "scope": "admin"},
            {"authorization": basic("app", "s3cret")},
            InvalidScope,
        ),
        (
            {"grant_type": "client_credentials", "scope": 'bad"scope'},
            {"authorization": basic("app", "s3cret")},
            InvalidScope,
        ),
        (
            {"grant_type": "client_credentials"},
            {"authorization": basic("noscope", "x")},
            InvalidScope,
        ),
        (
            {"grant_type": "client_credentials"},
            {"authorization": basic("other", "x")},
            UnauthorizedClient,
        ),
        (
            {"grant_type": "client_credentials", "client_id": "app", "client_secret": "x" * 600},
            {},
            InvalidClient,
        ),
    ],
)
async def test_errors(
    endpoint: TokenEndpoint,
    params: dict[str, str],
    headers: dict[str, str],
    error: type[OAuthError],
) -> None:
    with pytest.raises(error) as raised:
        await endpoint.handle(form_request(params, headers))
    assert type(raised.value) is error


async def test_basic_client_id_in_body_may_repeat_the_same_id(endpoint: TokenEndpoint) -> None:
    request = form_request(
        {"grant_type": "client_credentials", "client_id": "app"},
        {"authorization": basic("app", "s3cret")},
    )
    assert (await endpoint.handle(request)).status == 200


async def test_unknown_and_wrong_secret_are_indistinguishable(endpoint: TokenEndpoint) -> None:
    answers = []
    for client_id, secret in (("app", "wrong"), ("ghost", "wrong")):
        with pytest.raises(InvalidClient) as raised:
            await endpoint.handle(
                form_request(
                    {
                        "grant_type": "client_credentials",
                        "client_id": client_id,
                        "client_secret": secret,
                    }
                )
            )
        answers.append((raised.value.body(), raised.value.headers()))
    assert answers[0] == answers[1]


async def test_client_lookups_are_cached(endpoint: TokenEndpoint, clients: MemoryClients) -> None:
    request = form_request(
        {"grant_type": "client_credentials", "client_id": "app", "client_secret": "s3cret"}
    )
    for _ in range(5):
        await endpoint.handle(request)
    assert clients.lookups == 1
