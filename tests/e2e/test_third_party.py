"""Software nobody here wrote, against a real ``oauth-server serve`` process: Authlib's OAuth 2
client (discovery, client_credentials with Basic and post, introspection, revocation) and PyJWT
verifying our JWTs from nothing but the published JWKS."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt as pyjwt
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata

from tests.process import ServerProcess

pytestmark = pytest.mark.slow

SECRET = "third-party-test-secret-key-0123456789"


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(
        {"OAUTH_SERVER_DATABASE_URL": database_url, "OAUTH_SERVER_SECRET_KEY": SECRET},
        log=tmp_path / "server.log",
    )
    try:
        yield process.start()
    finally:
        process.stop()


@pytest.fixture(autouse=True)
def plain_http_on_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    # Authlib insists on https unless told this is a local test; production issuers are https.
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")


def discover(issuer: str) -> AuthorizationServerMetadata:
    document = httpx.get(f"{issuer}/.well-known/oauth-authorization-server").json()
    metadata = AuthorizationServerMetadata(document)
    # Every one of Authlib's RFC 8414 checks.
    checks = [name for name in dir(metadata) if name.startswith("validate_")]
    assert len(checks) > 15
    for name in checks:
        getattr(metadata, name)()
    assert document["response_types_supported"] == ["code"]
    return metadata


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post"])
async def test_authlib_client_full_cycle(server: ServerProcess, auth_method: str) -> None:
    issuer = f"http://localhost:{server.port}"
    metadata = discover(server.url)
    assert metadata["issuer"] == issuer
    endpoints = {
        name: metadata[name].replace(issuer, server.url)
        for name in ("token_endpoint", "introspection_endpoint", "revocation_endpoint")
    }

    async with AsyncOAuth2Client(
        "admin", "getroot", token_endpoint_auth_method=auth_method, scope="restaurent"
    ) as oauth:
        token = await oauth.fetch_token(
            endpoints["token_endpoint"], grant_type="client_credentials"
        )
        assert token["token_type"] == "Bearer"
        access_token = token["access_token"]

        # The restaurants API accepts it, through the client's own bearer auth.
        restaurants = await oauth.get(f"{server.url}/restaurent")
        assert restaurants.status_code == 200
        assert "_id" in restaurants.json()[0]

        introspection = await oauth.introspect_token(
            endpoints["introspection_endpoint"], token=access_token
        )
        assert introspection.json()["active"] is True

        revocation = await oauth.revoke_token(
            endpoints["revocation_endpoint"], token=access_token, token_type_hint="access_token"
        )
        assert revocation.status_code == 200

        after = await oauth.introspect_token(
            endpoints["introspection_endpoint"], token=access_token
        )
        assert after.json() == {"active": False}
        async with httpx.AsyncClient() as plain:
            refused = await plain.get(
                f"{server.url}/restaurent", headers={"Authorization": f"Bearer {access_token}"}
            )
        assert refused.status_code == 401


def test_pyjwt_verifies_with_only_the_jwks(server: ServerProcess) -> None:
    issuer = f"http://localhost:{server.port}"
    token = httpx.post(
        f"{server.url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=("admin", "getroot"),
    ).json()["access_token"]
    jwks_uri = discover(server.url)["jwks_uri"].replace(issuer, server.url)
    signing_key = pyjwt.PyJWKClient(jwks_uri).get_signing_key_from_jwt(token)
    claims = pyjwt.decode(token, signing_key, algorithms=["ES256"], audience=issuer, issuer=issuer)
    assert claims["client_id"] == "admin"
    assert pyjwt.get_unverified_header(token)["typ"] == "at+jwt"
    header, payload, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
    raw[5] ^= 0x01
    tampered = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    with pytest.raises(pyjwt.InvalidSignatureError):
        pyjwt.decode(
            f"{header}.{payload}.{tampered}", signing_key, algorithms=["ES256"], audience=issuer
        )
