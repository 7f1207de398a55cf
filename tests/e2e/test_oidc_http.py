"""OpenID Connect over HTTP, on both databases: the userinfo endpoint (OIDC Core §5.3), ID
tokens kept apart from access tokens, and the OpenID Provider metadata (Discovery 1.0 §3).

Access tokens for a user are minted directly with the server's own issuers (its key ring and
token store), as the authorization code grant will; the userinfo endpoint cannot tell them
from tokens that grant issues.
"""

from __future__ import annotations

import dataclasses
import secrets
from typing import Any

import httpx
import jwt as pyjwt
import pytest

from oauth_server.algorithms import SIGNING_ALGS
from oauth_server.oauth.tokens.issue import (
    Authorization,
    JwtAccessTokenIssuer,
    OpaqueTokenIssuer,
    TokenService,
)
from oauth_server.services import Services
from oauth_server.storage.models import TokenFormat, User
from tests.fakes import make_client
from tests.helpers import FORM, basic, bearer, seed_token

ISSUER = "http://localhost:8889"
CLIENT = "spa-client"
PROFILE = {
    "name": "Ada Lovelace",
    "given_name": "Ada",
    "family_name": "Lovelace",
    "preferred_username": "ada",
    "updated_at": 1_700_000_000,
}
EMAIL = {"email": "ada@example.com", "email_verified": True}


async def add_user(app_svc: Services, **fields: Any) -> User:
    user = User(
        user_id=secrets.token_hex(12),
        username=f"ada-{secrets.token_hex(4)}",
        password_hash="$argon2id$not-used",
        name=PROFILE["name"],  # type: ignore[arg-type]
        given_name="Ada",
        family_name="Lovelace",
        preferred_username="ada",
        email=EMAIL["email"],  # type: ignore[arg-type]
        email_verified=True,
        created_at=1_700_000_000,
        updated_at=1_700_000_000,
        **fields,
    )
    await app_svc.storage.users.add(user=user)
    return user


async def mint(
    app_svc: Services,
    subject: str,
    scope: str = "openid profile email",
    token_format: TokenFormat = "jwt",
) -> str:
    """An access token from the server's own issuers, as a sign-in grant would mint it."""
    settings = app_svc.settings
    ttl = settings.access_token_ttl
    tokens = TokenService(
        {
            "jwt": JwtAccessTokenIssuer(
                app_svc.keys.ring, issuer=settings.public_issuer, clock=app_svc.clock, ttl=ttl
            ),
            "opaque": OpaqueTokenIssuer(
                app_svc.storage.tokens, codec=app_svc.codec, clock=app_svc.clock, ttl=ttl
            ),
        }
    )
    client = dataclasses.replace(make_client(client_id=CLIENT), token_format=token_format)
    issued = await tokens.issue(
        Authorization(client, subject, tuple(scope.split()), (settings.resource_id,))
    )
    return issued.access.access_token


# --- UserInfo ---------------------------------------------------------------------------------


@pytest.mark.parametrize("token_format", ["jwt", "opaque"])
async def test_userinfo_get_post_header_post_body(
    client: httpx.AsyncClient, app_svc: Services, token_format: TokenFormat
) -> None:
    user = await add_user(app_svc)
    token = await mint(app_svc, user.user_id, token_format=token_format)
    expected = {"sub": user.user_id, **PROFILE, **EMAIL}
    answers = [
        await client.get("/oauth/userinfo", headers=bearer(token)),
        await client.post("/oauth/userinfo", headers=bearer(token)),
        await client.post("/oauth/userinfo", data={"access_token": token}, headers=FORM),
    ]
    for response in answers:
        assert response.status_code == 200, response.text
        assert response.json() == expected
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["content-type"] == "application/json"


async def test_userinfo_sub_is_the_id_tokens(client: httpx.AsyncClient, app_svc: Services) -> None:
    user = await add_user(app_svc)
    token = await mint(app_svc, user.user_id)
    id_token = app_svc.id_tokens.issue(
        user=user,
        client_id=CLIENT,
        nonce=None,
        auth_time=int(app_svc.clock.now()),
        sid=None,
        access_token=token,
        scope=("openid",),
        now=int(app_svc.clock.now()),
    )
    claims = pyjwt.decode(id_token, options={"verify_signature": False})
    response = await client.get("/oauth/userinfo", headers=bearer(token))
    assert response.json()["sub"] == claims["sub"] == user.user_id


@pytest.mark.parametrize(
    ("scope", "claims"),
    [
        ("openid", {}),
        ("openid profile", PROFILE),
        ("openid email", EMAIL),
        ("openid profile email offline_access", {**PROFILE, **EMAIL}),
    ],
)
async def test_userinfo_claims_follow_the_scope(
    client: httpx.AsyncClient, app_svc: Services, scope: str, claims: dict[str, Any]
) -> None:
    user = await add_user(app_svc)
    token = await mint(app_svc, user.user_id, scope)
    response = await client.get("/oauth/userinfo", headers=bearer(token))
    assert response.json() == {"sub": user.user_id, **claims}


async def test_userinfo_omits_claims_the_user_has_not_set(
    client: httpx.AsyncClient, app_svc: Services
) -> None:
    user = await add_user(app_svc)
    bare = User(user_id=secrets.token_hex(12), username="bare", password_hash="x", updated_at=5)
    await app_svc.storage.users.add(user=bare)
    token = await mint(app_svc, bare.user_id)
    response = await client.get("/oauth/userinfo", headers=bearer(token))
    assert response.json() == {"sub": bare.user_id, "updated_at": 5, "email_verified": False}
    assert user.user_id != bare.user_id


async def test_userinfo_without_openid_is_insufficient_scope(
    client: httpx.AsyncClient, app_svc: Services
) -> None:
    user = await add_user(app_svc)
    token = await mint(app_svc, user.user_id, "profile email restaurants:read")
    response = await client.get("/oauth/userinfo", headers=bearer(token))
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="userinfo"')
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="openid"' in challenge


async def test_userinfo_refuses_a_client_credentials_token(client: httpx.AsyncClient) -> None:
    # client_credentials never grants openid (no user is behind the token).
    token = await seed_token(client, "restaurants:read")
    response = await client.get("/oauth/userinfo", headers=bearer(token))
    assert (response.status_code, response.json()["error"]) == (403, "insufficient_scope")


async def test_userinfo_refuses_a_token_whose_subject_is_no_user(
    client: httpx.AsyncClient, app_svc: Services
) -> None:
    token = await mint(app_svc, CLIENT)  # a client's own subject, somehow with openid
    response = await client.get("/oauth/userinfo", headers=bearer(token))
    assert (response.status_code, response.json()["error"]) == (401, "invalid_token")


async def test_userinfo_refuses_disabled_and_deleted_users(
    client: httpx.AsyncClient, app_svc: Services
) -> None:
    disabled = await add_user(app_svc)
    deleted = await add_user(app_svc)
    disabled_token = await mint(app_svc, disabled.user_id)
    deleted_token = await mint(app_svc, deleted.user_id, token_format="opaque")
    for token in (disabled_token, deleted_token):
        assert (await client.get("/oauth/userinfo", headers=bearer(token))).status_code == 200
    assert await app_svc.storage.users.set_disabled(user_id=disabled.user_id, disabled=True)
    assert await app_svc.storage.users.delete(user_id=deleted.user_id)
    for token in (disabled_token, deleted_token):
        response = await client.get("/oauth/userinfo", headers=bearer(token))
        assert (response.status_code, response.json()["error"]) == (401, "invalid_token")
        assert 'error="invalid_token"' in response.headers["www-authenticate"]


@pytest.mark.parametrize(
    ("request_args", "status", "error"),
    [
        ({"method": "GET"}, 401, None),
        (
            {"method": "GET", "headers": {"Authorization": "Bearer not-a-token"}},
            401,
            "invalid_token",
        ),
        ({"method": "GET", "headers": {"Authorization": "Basic YTpi"}}, 401, None),
        ({"method": "GET", "headers": {"Authorization": "Bearer a b"}}, 400, "invalid_request"),
        # RFC 6749 §3.1: a parameter without a value is as if omitted.
        ({"method": "POST", "data": {"access_token": ""}, "headers": FORM}, 401, None),
        ({"method": "POST", "data": {"access_token": "x"}, "headers": FORM}, 401, "invalid_token"),
        ({"method": "GET", "params": {"access_token": "x"}}, 401, None),
        (
            {"method": "POST", "content": b"access_token=%ff", "headers": FORM},
            400,
            "invalid_request",
        ),
    ],
)
async def test_userinfo_bad_credentials(
    client: httpx.AsyncClient, request_args: dict[str, Any], status: int, error: str | None
) -> None:
    response = await client.request(url="/oauth/userinfo", **request_args)
    assert response.status_code == status, response.text
    if status == 401:
        assert response.headers["www-authenticate"].startswith('Bearer realm="userinfo"')
    if error is None:  # RFC 6750 §3.1: no error code when no credentials were sent
        assert "error=" not in response.headers["www-authenticate"]
    else:
        assert response.json()["error"] == error


async def test_userinfo_token_in_header_and_body_is_invalid_request(
    client: httpx.AsyncClient, app_svc: Services
) -> None:
    user = await add_user(app_svc)
    token = await mint(app_svc, user.user_id)
    response = await client.post(
        "/oauth/userinfo", data={"access_token": token}, headers={**FORM, **bearer(token)}
    )
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")


# --- ID tokens are not access tokens ----------------------------------------------------------


async def test_an_id_token_is_refused_as_an_access_token(
    client: httpx.AsyncClient, app_svc: Services
) -> None:
    user = await add_user(app_svc)
    access = await mint(app_svc, user.user_id)
    now = int(app_svc.clock.now())
    id_token = app_svc.id_tokens.issue(
        user=user,
        client_id="admin",
        nonce="n",
        auth_time=now,
        sid="s",
        access_token=access,
        scope=("openid",),
        now=now,
    )
    for path in ("/api/restaurants", "/oauth/userinfo"):
        response = await client.get(path, headers=bearer(id_token))
        assert (response.status_code, response.json()["error"]) == (401, "invalid_token"), path
    # Introspection by the client the ID token names: not an active access token.
    introspected = await client.post(
        "/oauth/introspect",
        data={"token": id_token},
        headers={**FORM, "Authorization": basic("admin", "getroot")},
    )
    assert introspected.json() == {"active": False}
    hint = await app_svc.id_token_hints.verify_hint(id_token, client_id="admin")
    assert hint.subject == user.user_id


# --- Discovery --------------------------------------------------------------------------------

REQUIRED_AND_RECOMMENDED = (
    "issuer",
    "token_endpoint",
    "userinfo_endpoint",
    "jwks_uri",
    "scopes_supported",
    "response_types_supported",
    "grant_types_supported",
    "subject_types_supported",
    "id_token_signing_alg_values_supported",
    "token_endpoint_auth_methods_supported",
    "claims_supported",
)


async def test_openid_configuration(client: httpx.AsyncClient) -> None:
    response = await client.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    metadata = response.json()
    # One document: the RFC 8414 metadata says the same.
    assert (await client.get("/.well-known/oauth-authorization-server")).json() == metadata
    for member in REQUIRED_AND_RECOMMENDED:
        assert member in metadata, member
    assert metadata["issuer"] == ISSUER
    assert metadata["userinfo_endpoint"] == f"{ISSUER}/oauth/userinfo"
    assert metadata["subject_types_supported"] == ["public"]
    assert metadata["id_token_signing_alg_values_supported"] == list(SIGNING_ALGS)
    assert {"openid", "profile", "email", "offline_access", "restaurants:read"} <= set(
        metadata["scopes_supported"]
    )
    assert {"sub", "iss", "auth_time", "email", "preferred_username"} <= set(
        metadata["claims_supported"]
    )
    assert metadata["request_parameter_supported"] is False
    assert metadata["claims_parameter_supported"] is False
    assert "registration_endpoint" not in metadata
    # RP-Initiated Logout 1.0 §2.1, with the authorization endpoint.
    if "authorization_code" in metadata["grant_types_supported"]:
        assert metadata["end_session_endpoint"] == f"{ISSUER}/oauth/logout"
    # The authorization endpoint and what goes with it appear with the authorization_code
    # grant (tests/unit/test_metadata.py); until it is served, nothing of it is advertised.
    if "authorization_code" not in metadata["grant_types_supported"]:
        assert "authorization_endpoint" not in metadata
        assert metadata["response_types_supported"] == []


async def test_every_endpoint_the_metadata_names_answers(
    client: httpx.AsyncClient, app_svc: Services
) -> None:
    metadata = (await client.get("/.well-known/openid-configuration")).json()
    user = await add_user(app_svc)
    token = await mint(app_svc, user.user_id)
    path = {
        name: metadata[name].removeprefix(ISSUER)
        for name in metadata
        if name.endswith(("_endpoint", "_uri", "documentation"))
    }
    assert set(path) >= {
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "revocation_endpoint",
        "introspection_endpoint",
        "service_documentation",
    }
    admin = {**FORM, "Authorization": basic("admin", "getroot")}
    checks = {
        "token_endpoint": client.post(
            path["token_endpoint"], data={"grant_type": "client_credentials"}, headers=admin
        ),
        "userinfo_endpoint": client.get(path["userinfo_endpoint"], headers=bearer(token)),
        "jwks_uri": client.get(path["jwks_uri"]),
        "introspection_endpoint": client.post(
            path["introspection_endpoint"], data={"token": token}, headers=admin
        ),
        "revocation_endpoint": client.post(
            path["revocation_endpoint"], data={"token": "x"}, headers=admin
        ),
        "service_documentation": client.get(path["service_documentation"]),
        # No session: the signed-out page (RP-Initiated Logout 1.0 §4, idempotent).
        "end_session_endpoint": client.get(path["end_session_endpoint"]),
    }
    for name, pending in checks.items():
        response = await pending
        assert response.status_code == 200, (name, response.text)
    for name in set(path) - set(checks):
        # Only the authorization endpoint, being built elsewhere, may be left unchecked.
        assert name == "authorization_endpoint", name
