"""JWT access tokens, discovery, introspection (RFC 7662), revocation (RFC 7009) and resource
indicators (RFC 8707) through the ASGI app."""

from __future__ import annotations

import base64
import hashlib
import hmac
import inspect
import json

import httpx
import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from joserfc import jwt as joserfc_jwt
from sqlalchemy.exc import OperationalError

from oauth_server.clock import FrozenClock
from oauth_server.oauth.keys import generate_private_jwk
from oauth_server.oauth.tokens.verify.jwks import RemoteJwks
from oauth_server.web.api import FastRouter
from tests.helpers import app_services, basic, bearer, seed_token

ISSUER = "http://localhost:8889"
ADMIN = basic("admin", "getroot")


async def new_client(app: FastRouter, client_id: str, **options: object) -> str:
    created = await app_services(app).registry.create(client_id=client_id, **options)  # type: ignore[arg-type]
    assert created.secret is not None
    return created.secret


async def token_for(client: httpx.AsyncClient, auth: str) -> str:
    response = await client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers={"Authorization": auth}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def introspect(client: httpx.AsyncClient, token: str, auth: str = ADMIN) -> httpx.Response:
    return await client.post(
        "/oauth/introspect", data={"token": token}, headers={"Authorization": auth}
    )


async def revoke(client: httpx.AsyncClient, token: str, auth: str = ADMIN) -> httpx.Response:
    return await client.post(
        "/oauth/revoke", data={"token": token}, headers={"Authorization": auth}
    )


# --- JWT access tokens -----------------------------------------------------------------------


async def test_demo_client_gets_an_rfc9068_jwt(client: httpx.AsyncClient) -> None:
    token = await seed_token(client)
    header = pyjwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "ES256"
    jwks = (await client.get("/.well-known/jwks.json")).json()
    key = pyjwt.PyJWK(next(k for k in jwks["keys"] if k["kid"] == header["kid"]))
    claims = pyjwt.decode(
        token,
        key,
        algorithms=["ES256"],
        audience=ISSUER,
        issuer=ISSUER,
        options={"require": ["exp", "iat", "jti", "sub", "aud", "iss"]},
    )
    assert claims["sub"] == claims["client_id"] == "admin"
    assert claims["scope"] == "restaurent"
    assert claims["exp"] - claims["iat"] == 3600


async def test_opaque_client_gets_an_opaque_token(
    app: FastRouter, client: httpx.AsyncClient
) -> None:
    secret = await new_client(app, "opq", scopes=["restaurants:read"], token_format="opaque")
    response = await client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": basic("opq", secret)},
    )
    token = response.json()["access_token"]
    assert "." not in token
    assert (await client.get("/restaurent", headers=bearer(token))).status_code == 200
    body = (await introspect(client, token, basic("opq", secret))).json()
    # RFC 7662 §2.2 members, exactly: an opaque token has no jti (its id is not a claim).
    assert set(body) == {
        "active", "scope", "client_id", "token_type", "exp", "iat", "sub", "aud", "iss"
    }  # fmt: skip
    assert body["active"] is True
    assert (body["scope"], body["client_id"], body["sub"]) == ("restaurants:read", "opq", "opq")
    assert (body["token_type"], body["iss"], body["aud"]) == ("Bearer", ISSUER, ISSUER)
    assert body["exp"] - body["iat"] == 3600


# --- Discovery -------------------------------------------------------------------------------


async def test_authorization_server_metadata(client: httpx.AsyncClient) -> None:
    response = await client.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    metadata = response.json()
    assert metadata["issuer"] == ISSUER
    for endpoint in (
        "authorization_endpoint",
        "token_endpoint",
        "introspection_endpoint",
        "revocation_endpoint",
        "jwks_uri",
    ):
        assert metadata[endpoint].startswith(ISSUER + "/")
    # RFC 8414 §2, RFC 9207 §3: what the authorization endpoint does.
    assert metadata["response_types_supported"] == ["code"]
    assert metadata["response_modes_supported"] == ["query", "form_post"]
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["authorization_response_iss_parameter_supported"] is True
    assert metadata["grant_types_supported"] == [
        "authorization_code",
        "client_credentials",
        "refresh_token",
    ]
    # `none`: public clients at the token endpoint (sign-in grants) and the revocation endpoint.
    assert metadata["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
        "none",
    ]
    assert metadata["introspection_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
    ]
    assert "restaurants:read" in metadata["scopes_supported"]
    # RFC 8414 §2: REQUIRED with the authorization_code grant.
    assert metadata["authorization_endpoint"] == ISSUER + "/oauth/authorize"
    # Nothing is advertised that does not exist.
    assert "registration_endpoint" not in metadata
    assert metadata["end_session_endpoint"] == ISSUER + "/oauth/logout"
    # Every advertised endpoint is the real one: refuses a client that did not authenticate
    # (RFC 6749 §5.2 invalid_client) and does its job for one that did.
    token_url, introspection_url, revocation_url = (
        metadata[name].removeprefix(ISSUER)
        for name in ("token_endpoint", "introspection_endpoint", "revocation_endpoint")
    )
    for url in (token_url, introspection_url, revocation_url):
        anonymous = await client.post(url, data={"grant_type": "client_credentials", "token": "x"})
        assert anonymous.status_code == 401, (url, anonymous.text)
        assert anonymous.json()["error"] == "invalid_client", url
    admin = {"Authorization": basic("admin", "getroot")}
    issued = await client.post(token_url, data={"grant_type": "client_credentials"}, headers=admin)
    assert issued.status_code == 200, issued.text
    assert issued.json()["token_type"] == "Bearer"
    token = issued.json()["access_token"]
    introspected = await client.post(introspection_url, data={"token": token}, headers=admin)
    assert introspected.status_code == 200, introspected.text
    assert (introspected.json()["active"], introspected.json()["client_id"]) == (True, "admin")
    revoked = await client.post(revocation_url, data={"token": token}, headers=admin)
    assert (revoked.status_code, revoked.content) == (200, b"")
    jwks = await client.get(metadata["jwks_uri"].removeprefix(ISSUER))
    assert jwks.status_code == 200
    assert jwks.json()["keys"]
    # The OpenID Provider metadata is the same document (tests/e2e/test_oidc_http.py).
    assert (await client.get("/.well-known/openid-configuration")).json() == metadata


async def test_jwks_public_distinct_and_complete(
    app: FastRouter, client: httpx.AsyncClient
) -> None:
    await app_services(app).keys.rotate()
    keys = (await client.get("/.well-known/jwks.json")).json()["keys"]
    assert len(keys) == 2
    assert len({key["kid"] for key in keys}) == 2
    for key in keys:
        assert key["kty"] in ("EC", "RSA", "OKP")
        assert not {"d", "p", "q", "dp", "dq", "qi", "k"} & set(key)
        assert key["use"] == "sig"
        assert key["alg"] == "ES256"


async def test_the_jwks_is_cached_as_long_as_remote_jwks_keeps_it(
    client: httpx.AsyncClient,
) -> None:
    """README: the document is ``Cache-Control: max-age=300`` and ``RemoteJwks`` refreshes every
    300 s: a resource server apart from the issuer holds the JWKS that long."""
    response = await client.get("/.well-known/jwks.json")
    assert response.headers["cache-control"] == "public, max-age=300"
    refresh = inspect.signature(RemoteJwks).parameters["max_age"].default
    assert refresh == 300


async def test_protected_resource_metadata(client: httpx.AsyncClient) -> None:
    metadata = (await client.get("/.well-known/oauth-protected-resource")).json()
    assert metadata["resource"] == ISSUER
    assert metadata["authorization_servers"] == [ISSUER]
    assert metadata["bearer_methods_supported"] == ["header"]
    challenge = (await client.get("/restaurentUpdate")).headers["www-authenticate"]
    assert f'resource_metadata="{ISSUER}/.well-known/oauth-protected-resource"' in challenge


# --- Introspection ---------------------------------------------------------------------------


async def test_introspection_of_an_active_jwt(client: httpx.AsyncClient) -> None:
    token = await seed_token(client, "restaurants:read")
    response = await introspect(client, token)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["active"] is True
    assert body["scope"] == "restaurants:read"
    assert (body["client_id"], body["sub"], body["token_type"]) == ("admin", "admin", "Bearer")
    assert (body["iss"], body["aud"]) == (ISSUER, ISSUER)
    assert body["exp"] - body["iat"] == 3600
    assert body["jti"]


async def test_introspection_inactive_cases(
    app: FastRouter, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    expired = await seed_token(client)
    clock.advance(3600 + 31)
    revoked = await seed_token(client)
    assert (await revoke(client, revoked)).status_code == 200
    # A token of another client, for a resource the caller does not serve.
    secret = await new_client(app, "other", scopes=["x"], resources=["https://other.example"])
    foreign = (
        await client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": basic("other", secret)},
        )
    ).json()
    for token in (expired, revoked, foreign["access_token"], "unknown", "a.b.c", "x" * 5000):
        response = await introspect(client, token)
        assert response.status_code == 200
        assert response.json() == {"active": False}, token[:20]
    # The token's own client sees it.
    own = await introspect(client, foreign["access_token"], basic("other", secret))
    assert own.json()["active"] is True


@pytest.mark.parametrize("token_format", ["jwt", "opaque"])
async def test_resource_server_client_sees_tokens_for_its_resource(
    app: FastRouter, client: httpx.AsyncClient, token_format: str
) -> None:
    """Introspecting another client's token is a right: registered with ``introspect``."""
    holder = await new_client(app, "holder", scopes=["restaurent"], token_format=token_format)
    token = await token_for(client, basic("holder", holder))
    secret = await new_client(app, "rs", scopes=["x"], introspect=[ISSUER])
    body = (await introspect(client, token, basic("rs", secret))).json()
    assert (body["active"], body["client_id"]) == (True, "holder")
    # A resource server for another audience learns nothing about it.
    other = await new_client(app, "rs2", scopes=["x"], introspect=["https://other.example"])
    assert (await introspect(client, token, basic("rs2", other))).json() == {"active": False}


@pytest.mark.parametrize("token_format", ["jwt", "opaque"])
async def test_introspection_of_another_clients_token_is_not_a_default(
    app: FastRouter, client: httpx.AsyncClient, token_format: str
) -> None:
    """Issue 8 finding 7: a client with only ``restaurants:read`` and no registered resources
    (or the restaurants API as its resource) got the full metadata of another client's token."""
    holder = await new_client(app, "holder", scopes=["restaurent"], token_format=token_format)
    token = await token_for(client, basic("holder", holder))
    snoop = await new_client(app, "snoop", scopes=["restaurants:read"])
    audience = await new_client(app, "aud", scopes=["restaurants:read"], resources=[ISSUER])
    for auth in (basic("snoop", snoop), basic("aud", audience), ADMIN):
        response = await introspect(client, token, auth)
        assert response.status_code == 200
        assert response.json() == {"active": False}
    assert (await introspect(client, token, basic("holder", holder))).json()["active"] is True


INTROSPECTION_ERRORS = [
    ("no client authentication", {}, {"token": "t"}, 401, "invalid_client"),
    ("wrong secret", {"Authorization": basic("admin", "x")}, {"token": "t"}, 401, "invalid_client"),
    ("missing token", {"Authorization": ADMIN}, {}, 400, "invalid_request"),
]


@pytest.mark.parametrize("path", ["/oauth/introspect", "/oauth/revoke"])
@pytest.mark.parametrize(
    ("headers", "data", "status", "error"),
    [case[1:] for case in INTROSPECTION_ERRORS],
    ids=[case[0] for case in INTROSPECTION_ERRORS],
)
async def test_introspection_and_revocation_errors(
    client: httpx.AsyncClient,
    path: str,
    headers: dict[str, str],
    data: dict[str, str],
    status: int,
    error: str,
) -> None:
    response = await client.post(path, data=data, headers=headers)
    assert response.status_code == status
    assert response.json()["error"] == error
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("path", ["/oauth/introspect", "/oauth/revoke"])
async def test_introspection_and_revocation_are_post_only(
    client: httpx.AsyncClient, path: str
) -> None:
    assert (await client.get(path)).status_code == 405


async def test_introspection_accepts_client_secret_post(client: httpx.AsyncClient) -> None:
    token = await seed_token(client)
    response = await client.post(
        "/oauth/introspect",
        data={
            "token": token,
            "client_id": "admin",
            "client_secret": "getroot",
            "token_type_hint": "refresh_token",
        },
    )  # a wrong hint changes nothing (RFC 7662 §2.1)
    assert response.json()["active"] is True


# --- Revocation ------------------------------------------------------------------------------


@pytest.mark.parametrize("token_format", ["jwt", "opaque"])
async def test_revocation_takes_effect_everywhere_at_once(
    app: FastRouter, client: httpx.AsyncClient, token_format: str
) -> None:
    secret = await new_client(app, "rv", scopes=["restaurent"], token_format=token_format)
    auth = basic("rv", secret)
    token = await token_for(client, auth)
    assert (await client.get("/restaurent", headers=bearer(token))).status_code == 200
    response = await revoke(client, token, auth)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert (await introspect(client, token, auth)).json() == {"active": False}
    after = await client.get("/restaurent", headers=bearer(token))
    assert after.status_code == 401
    assert 'error="invalid_token"' in after.headers["www-authenticate"]
    assert (await revoke(client, token, auth)).status_code == 200  # already revoked: still 200


async def test_revoking_unknown_or_malformed_tokens_is_200(client: httpx.AsyncClient) -> None:
    for token in ("unknown", "a.b.c", "x" * 8000):
        response = await revoke(client, token)
        assert response.status_code == 200


@pytest.mark.parametrize("token_format", ["jwt", "opaque"])
async def test_another_clients_token_is_not_revoked(
    app: FastRouter, client: httpx.AsyncClient, token_format: str
) -> None:
    secret = await new_client(app, "victim", scopes=["restaurent"], token_format=token_format)
    victim = basic("victim", secret)
    token = await token_for(client, victim)
    other = await new_client(app, "attacker", scopes=["restaurent"])
    assert (await revoke(client, token, basic("attacker", other))).status_code == 200
    assert (await introspect(client, token, victim)).json()["active"] is True
    assert (await client.get("/restaurent", headers=bearer(token))).status_code == 200


@pytest.mark.parametrize("token_format", ["jwt", "opaque"])
async def test_storage_failure_is_503_never_a_false_200(
    app: FastRouter, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, token_format: str
) -> None:
    secret = await new_client(app, "st", scopes=["restaurent"], token_format=token_format)
    auth = basic("st", secret)
    token = await token_for(client, auth)
    storage = app_services(app).storage

    async def down(**_: object) -> bool:
        raise OperationalError("UPDATE …", {}, ConnectionRefusedError("database is down"))

    monkeypatch.setattr(storage.revocations, "add", down)
    monkeypatch.setattr(storage.tokens, "revoke", down)
    response = await revoke(client, token, auth)
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"
    assert int(response.headers["retry-after"]) > 0
    monkeypatch.undo()
    assert (await introspect(client, token, auth)).json()["active"] is True


# --- Resource indicators (RFC 8707) ----------------------------------------------------------


async def test_resource_parameter_sets_the_audience(
    app: FastRouter, client: httpx.AsyncClient
) -> None:
    secret = await new_client(
        app, "multi", scopes=["restaurent"], resources=["https://reports.example", ISSUER]
    )
    auth = {"Authorization": basic("multi", secret)}
    default = (
        await client.post("/oauth/token", data={"grant_type": "client_credentials"}, headers=auth)
    ).json()["access_token"]
    assert pyjwt.decode(default, options={"verify_signature": False})["aud"] == (
        "https://reports.example"
    )
    # A token for another resource is refused by the restaurants API.
    refused = await client.get("/restaurent", headers=bearer(default))
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    ours = (
        await client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials", "resource": ISSUER},
            headers=auth,
        )
    ).json()["access_token"]
    assert (await client.get("/restaurent", headers=bearer(ours))).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        "grant_type=client_credentials&resource=https%3A%2F%2Felsewhere.example",
        "grant_type=client_credentials&resource=https%3A%2F%2Fx.example%23frag",
        "grant_type=client_credentials&resource=relative%2Fpath",
        "grant_type=client_credentials&resource=a&resource=b",
    ],
    ids=["not allowed", "fragment", "relative", "repeated"],
)
async def test_invalid_target(client: httpx.AsyncClient, body: str) -> None:
    response = await client.post(
        "/oauth/token",
        content=body,
        headers={"Authorization": ADMIN, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_target"


# --- Forged tokens at the resource API -------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forge(kind: str, genuine: str, public_pem: bytes) -> str:
    header_segment, payload_segment, _ = genuine.split(".")
    header = json.loads(base64.urlsafe_b64decode(header_segment + "=="))
    claims = json.loads(base64.urlsafe_b64decode(payload_segment + "=="))
    attacker = generate_private_jwk("ES256")
    if kind == "alg none":
        return f"{_b64(json.dumps({**header, 'alg': 'none'}).encode())}.{payload_segment}."
    if kind == "HS256 with the public key":
        signing_input = f"{_b64(json.dumps({**header, 'alg': 'HS256'}).encode())}.{payload_segment}"
        mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{_b64(mac)}"
    if kind == "attacker jwk in header":
        forged_header = {**header, "jwk": attacker.as_dict(private=False)}
        return joserfc_jwt.encode(forged_header, claims, attacker, algorithms=["ES256"])
    if kind == "attacker key, our kid":
        return joserfc_jwt.encode(
            header, {**claims, "scope": "restaurants:write"}, attacker, algorithms=["ES256"]
        )
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    ["alg none", "HS256 with the public key", "attacker jwk in header", "attacker key, our kid"],
)
async def test_forged_tokens_get_401_invalid_token(client: httpx.AsyncClient, kind: str) -> None:
    genuine = await seed_token(client)
    jwks = (await client.get("/.well-known/jwks.json")).json()
    public_pem = pyjwt.PyJWK(jwks["keys"][0]).key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    response = await client.get("/restaurent", headers=bearer(_forge(kind, genuine, public_pem)))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert response.json()["error"] == "invalid_token"
