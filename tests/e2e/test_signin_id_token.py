"""The token endpoint's ID tokens (OpenID Connect Core §3.1.3.3): the authorization_code grant
issues one when the granted scope has ``openid``, verified here with PyJWT against the served
JWKS, and none without ``openid``."""

from __future__ import annotations

import httpx
import jwt as pyjwt
import pytest

from oauth_server.crypto import new_split_token
from oauth_server.oauth.tokens.id_token import at_hash
from oauth_server.services import Services
from oauth_server.storage.models import AuthorizationCode
from oauth_server.web.api import FastRouter
from tests.helpers import FORM, bearer
from tests.signin import PUBLIC_ID, REDIRECT, USER_ID, add_world, new_verifier, s256

NONCE = "n-0S6_WzA2Mj"
SESSION = "sess-1"


def app_svc(app: FastRouter) -> Services:
    return app.state.services  # type: ignore[no-any-return]


async def seeded_code(app: FastRouter, scope: str, *, auth_time: int) -> tuple[str, str]:
    services = app_svc(app)
    now = int(services.clock.now())
    verifier = new_verifier()
    token = new_split_token(services.clock.now())
    await services.storage.codes.add(
        code=AuthorizationCode(
            selector=token.selector,
            verifier_hash=token.verifier_hash,
            client_id=PUBLIC_ID,
            redirect_uri=REDIRECT,
            user_id=USER_ID,
            scope=scope,
            issued_at=now,
            expires_at=now + 60,
            code_challenge=s256(verifier),
            code_challenge_method="S256",
            nonce=NONCE,
            session_id=SESSION,
            auth_time=auth_time,
        )
    )
    return token.value, verifier


async def exchange(client: httpx.AsyncClient, code: str, verifier: str) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
        "client_id": PUBLIC_ID,
    }
    return await client.post("/oauth/token", data=form, headers=FORM)


async def test_an_openid_code_exchange_returns_an_id_token(
    app: FastRouter, client: httpx.AsyncClient
) -> None:
    await add_world(app_svc(app).storage)
    auth_time = int(app_svc(app).clock.now()) - 30
    code, verifier = await seeded_code(
        app, "openid profile offline_access restaurants:read", auth_time=auth_time
    )
    response = await exchange(client, code, verifier)
    assert response.status_code == 200, response.text
    body = response.json()
    issuer = app_svc(app).settings.public_issuer
    jwks = pyjwt.PyJWKSet.from_dict((await client.get("/.well-known/jwks.json")).json())
    header = pyjwt.get_unverified_header(body["id_token"])
    assert header["typ"] == "JWT"
    key = next(k for k in jwks.keys if k.key_id == header["kid"])
    claims = pyjwt.decode(
        body["id_token"],
        key,
        algorithms=[header["alg"]],
        audience=PUBLIC_ID,
        issuer=issuer,
        options={"require": ["exp", "iat", "sub", "aud", "iss"]},
    )
    assert claims["sub"] == USER_ID
    assert claims["nonce"] == NONCE
    assert claims["sid"] == SESSION
    assert claims["auth_time"] == auth_time
    assert claims["amr"] == ["pwd"]
    assert claims["at_hash"] == at_hash(body["access_token"], header["alg"])
    assert "azp" not in claims  # one audience (Core §2)
    assert body["refresh_token"]  # offline_access granted
    # The ID token's subject is userinfo's.
    info = await client.get("/oauth/userinfo", headers=bearer(body["access_token"]))
    assert info.status_code == 200, info.text
    assert info.json()["sub"] == claims["sub"]
    # An ID token is never an access token (typ JWT, not at+jwt).
    refused = await client.get("/oauth/userinfo", headers=bearer(body["id_token"]))
    assert refused.status_code == 401


@pytest.mark.parametrize("scope", ["restaurants:read", "profile restaurants:read"])
async def test_no_id_token_without_openid(
    app: FastRouter, client: httpx.AsyncClient, scope: str
) -> None:
    await add_world(app_svc(app).storage)
    code, verifier = await seeded_code(app, scope, auth_time=int(app_svc(app).clock.now()))
    response = await exchange(client, code, verifier)
    assert response.status_code == 200, response.text
    assert "id_token" not in response.json()


async def test_a_refresh_keeping_openid_returns_an_id_token_of_the_same_sign_in(
    app: FastRouter, client: httpx.AsyncClient
) -> None:
    await add_world(app_svc(app).storage)
    auth_time = int(app_svc(app).clock.now()) - 30
    code, verifier = await seeded_code(
        app, "openid offline_access restaurants:read", auth_time=auth_time
    )
    first = (await exchange(client, code, verifier)).json()
    original = pyjwt.decode(first["id_token"], options={"verify_signature": False})
    form = {"grant_type": "refresh_token", "client_id": PUBLIC_ID}
    response = await client.post(
        "/oauth/token", data={**form, "refresh_token": first["refresh_token"]}, headers=FORM
    )
    assert response.status_code == 200, response.text
    body = response.json()
    # OIDC Core §12.2: iss, sub, aud, auth_time (and azp, absent with one audience) as the
    # original; no nonce; at_hash of the new access token.
    claims = pyjwt.decode(body["id_token"], options={"verify_signature": False})
    for name in ("iss", "sub", "aud", "auth_time", "sid"):
        assert claims[name] == original[name], name
    assert claims["auth_time"] == auth_time
    assert "nonce" not in claims
    assert "azp" not in claims
    alg = pyjwt.get_unverified_header(body["id_token"])["alg"]
    assert claims["at_hash"] == at_hash(body["access_token"], alg)
    # Narrowed to a scope without openid: no ID token (Core §12.2 applies to openid requests).
    narrowed = await client.post(
        "/oauth/token",
        data={**form, "refresh_token": body["refresh_token"], "scope": "restaurants:read"},
        headers=FORM,
    )
    assert narrowed.status_code == 200, narrowed.text
    assert "id_token" not in narrowed.json()
