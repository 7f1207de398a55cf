"""The OpenID Foundation conformance suite's Basic OP checks (plan
``oidcc-basic-certification-test-plan``), ported to pytest: the one place that names each test
id beside its check (the suite itself needs Docker). Through the ASGI app, on both databases,
a browser's part done by posting the real login and consent forms.

Not ported: ``oidcc-scope-address`` / ``oidcc-scope-phone`` / ``oidcc-scope-all`` (the server
stores no address or phone claims and offers no such scopes) and the dynamic-registration
tests (clients are registered with the CLI). RP-Initiated Logout's own plan is covered by
``tests/e2e/test_logout_http.py`` (README table)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt as pyjwt
import pytest

from oauth_server.oauth.tokens.id_token import at_hash
from oauth_server.services import Services
from oauth_server.web.api import FastRouter
from tests.jwt_forgeries import segment
from tests.signin import (
    PASSWORD,
    USERNAME,
    App,
    authorize_params,
    browser_sign_in,
    pkce_pair,
    query_of,
    read_form,
    redeem,
    register_app,
)

pytestmark = pytest.mark.asyncio

SCOPES = ("openid", "profile", "email", "offline_access", "restaurants:read")


@dataclass
class OP:
    """The server under test, a browser, and the suite's two clients."""

    http: httpx.AsyncClient
    services: Services
    rp: App
    second: App
    confidential: App

    @property
    def issuer(self) -> str:
        return self.services.settings.public_issuer

    async def authorize(self, app: App | None = None, **extra: str) -> httpx.Response:
        _, challenge = pkce_pair()
        params = authorize_params(app or self.rp, challenge, **extra)
        return await self.http.get("/oauth/authorize", params=params)

    async def sign_in(
        self, app: App | None = None, **extra: str
    ) -> tuple[dict[str, str], dict[str, Any]]:
        """The whole code flow: the callback's query and the token response."""
        app = app or self.rp
        verifier, challenge = pkce_pair()
        landed = await browser_sign_in(self.http, app, challenge, **extra)
        assert landed.status_code == 303, landed.text
        location = landed.headers["location"]
        assert location.startswith(app.redirect_uri + "?"), location
        query = query_of(location)
        assert query["iss"] == self.issuer  # RFC 9207, on every authorization response
        return query, await redeem(self.http, app, location, verifier)

    async def id_token(self, token: str, *, nonce: str | None = "n-1") -> dict[str, Any]:
        """The suite's ID token checks (OIDC Core §3.1.3.7), with the served JWKS."""
        jwks = pyjwt.PyJWKSet.from_dict((await self.http.get("/.well-known/jwks.json")).json())
        header = pyjwt.get_unverified_header(token)
        metadata = (await self.http.get("/.well-known/openid-configuration")).json()
        assert header["alg"] in metadata["id_token_signing_alg_values_supported"]
        assert header["alg"] != "none"
        key = next(k for k in jwks.keys if k.key_id == header["kid"])
        claims: dict[str, Any] = pyjwt.decode(
            token,
            key.key,
            algorithms=[header["alg"]],
            audience=self.rp.client_id,
            issuer=self.issuer,
            # Times against the server's (frozen) clock, not the wall clock.
            options={
                "require": ["iss", "sub", "aud", "exp", "iat", "auth_time"],
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
        now = self.services.clock.now()
        assert claims["iat"] <= now < claims["exp"]
        assert claims["auth_time"] <= now
        assert claims.get("nonce") == nonce
        return claims

    async def userinfo(self, access_token: str, how: str = "get") -> httpx.Response:
        bearer = {"Authorization": f"Bearer {access_token}"}
        if how == "get":
            return await self.http.get("/oauth/userinfo", headers=bearer)
        if how == "post-header":
            return await self.http.post("/oauth/userinfo", headers=bearer)
        return await self.http.post("/oauth/userinfo", data={"access_token": access_token})


@pytest.fixture
async def op(app: FastRouter, app_svc: Services) -> AsyncIterator[OP]:
    await app_svc.accounts.create(
        USERNAME,
        PASSWORD,
        name="Alice Example",
        given_name="Alice",
        family_name="Example",
        email="alice@example.com",
        email_verified=True,
    )
    rp = await register_app(app_svc, scopes=SCOPES)
    second = await register_app(
        app_svc, name="Second", scopes=SCOPES, redirect_uris=("https://second.example/cb",)
    )
    confidential = await register_app(
        app_svc,
        name="Web App",
        client_type="confidential",
        scopes=SCOPES,
        redirect_uris=("https://web.example/cb",),
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield OP(http, app_svc, rp, second, confidential)


def error_of(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 303, response.text
    return query_of(response.headers["location"])


def error_page(response: httpx.Response) -> None:
    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")


# --- The checks, one per conformance test id ----------------------------------------------


async def oidcc_server(op: OP) -> None:
    query, tokens = await op.sign_in(state="st-1")
    assert query["state"] == "st-1"
    assert tokens["token_type"] == "Bearer"
    claims = await op.id_token(tokens["id_token"])
    assert claims["at_hash"] == at_hash(tokens["access_token"], pyjwt.get_unverified_header(
        tokens["id_token"])["alg"])  # fmt: skip


async def oidcc_response_type_missing(op: OP) -> None:
    _, challenge = pkce_pair()
    params = authorize_params(op.rp, challenge)
    del params["response_type"]
    error = error_of(await op.http.get("/oauth/authorize", params=params))
    assert error["error"] == "invalid_request"
    assert error["state"] == "st-1"
    assert error["iss"] == op.issuer


async def oidcc_userinfo_get(op: OP) -> None:
    _, tokens = await op.sign_in()
    response = await op.userinfo(tokens["access_token"], "get")
    assert response.status_code == 200
    assert response.json()["sub"] == (await op.id_token(tokens["id_token"]))["sub"]


async def oidcc_userinfo_post_header(op: OP) -> None:
    _, tokens = await op.sign_in()
    response = await op.userinfo(tokens["access_token"], "post-header")
    assert response.status_code == 200
    assert response.json()["sub"] == (await op.id_token(tokens["id_token"]))["sub"]


async def oidcc_userinfo_post_body(op: OP) -> None:
    _, tokens = await op.sign_in()
    response = await op.userinfo(tokens["access_token"], "post-body")
    assert response.status_code == 200
    assert response.json()["sub"] == (await op.id_token(tokens["id_token"]))["sub"]


async def oidcc_ensure_request_without_nonce_succeeds_for_code_flow(op: OP) -> None:
    verifier, challenge = pkce_pair()
    landed = await browser_sign_in(op.http, op.rp, challenge, nonce="")  # empty: absent
    tokens = await redeem(op.http, op.rp, landed.headers["location"], verifier)
    assert "nonce" not in await op.id_token(tokens["id_token"], nonce=None)


async def oidcc_scope_profile(op: OP) -> None:
    _, tokens = await op.sign_in(scope="openid profile")
    claims = (await op.userinfo(tokens["access_token"])).json()
    assert claims["name"] == "Alice Example"
    assert claims["given_name"] == "Alice"
    assert claims["family_name"] == "Example"
    assert "email" not in claims


async def oidcc_scope_email(op: OP) -> None:
    _, tokens = await op.sign_in(scope="openid email")
    claims = (await op.userinfo(tokens["access_token"])).json()
    assert claims["email"] == "alice@example.com"
    assert claims["email_verified"] is True
    assert "name" not in claims


async def oidcc_ensure_other_scope_order_succeeds(op: OP) -> None:
    _, tokens = await op.sign_in(scope="email openid")
    assert (await op.userinfo(tokens["access_token"])).json()["email"] == "alice@example.com"


async def oidcc_display_page(op: OP) -> None:
    _, tokens = await op.sign_in(display="page")
    await op.id_token(tokens["id_token"])


async def oidcc_display_popup(op: OP) -> None:
    _, tokens = await op.sign_in(display="popup")
    await op.id_token(tokens["id_token"])


async def oidcc_prompt_login(op: OP) -> None:
    _, first = await op.sign_in()
    op.services.clock.advance(5)  # type: ignore[attr-defined]
    response = await op.authorize(prompt="login")
    assert "/login" in response.headers["location"]  # asked again, though signed in
    _, second = await op.sign_in(prompt="login")
    before = (await op.id_token(first["id_token"]))["auth_time"]
    assert (await op.id_token(second["id_token"]))["auth_time"] > before


async def oidcc_prompt_none_not_logged_in(op: OP) -> None:
    error = error_of(await op.authorize(prompt="none"))
    assert error["error"] == "login_required"
    assert error["state"] == "st-1"
    assert error["iss"] == op.issuer


async def oidcc_prompt_none_logged_in(op: OP) -> None:
    _, first = await op.sign_in()
    _, again = await op.sign_in(prompt="none")  # no page shown (browser_sign_in asserts 303)
    sub = (await op.id_token(first["id_token"]))["sub"]
    assert (await op.id_token(again["id_token"]))["sub"] == sub


async def oidcc_max_age_1(op: OP) -> None:
    _, first = await op.sign_in()
    op.services.clock.advance(2)  # type: ignore[attr-defined]
    response = await op.authorize(max_age="1")
    assert "/login" in response.headers["location"]  # re-authentication
    _, second = await op.sign_in(max_age="1")
    auth_time = (await op.id_token(second["id_token"]))["auth_time"]
    assert auth_time > (await op.id_token(first["id_token"]))["auth_time"]


async def oidcc_max_age_10000(op: OP) -> None:
    _, first = await op.sign_in()
    op.services.clock.advance(2)  # type: ignore[attr-defined]
    _, second = await op.sign_in(max_age="10000", prompt="none")  # no login page
    auth_time = (await op.id_token(second["id_token"]))["auth_time"]
    assert auth_time == (await op.id_token(first["id_token"]))["auth_time"]


async def oidcc_ensure_request_with_unknown_parameter_succeeds(op: OP) -> None:
    _, tokens = await op.sign_in(extra_parameter="value", claims_locales="se")
    await op.id_token(tokens["id_token"])


async def oidcc_id_token_hint(op: OP) -> None:
    _, first = await op.sign_in()
    _, again = await op.sign_in(prompt="none", id_token_hint=first["id_token"])
    sub = (await op.id_token(first["id_token"]))["sub"]
    assert (await op.id_token(again["id_token"]))["sub"] == sub
    # Beyond the suite: a forged hint is an error, and a hint naming someone else is not
    # honoured silently (OIDC Core §3.1.2.1: login_required).
    forged = first["id_token"].rsplit(".", 1)[0] + ".AAAA"
    assert error_of(await op.authorize(id_token_hint=forged))["error"] == "invalid_request"
    header, _, signature = first["id_token"].split(".")
    claims = pyjwt.decode(first["id_token"], options={"verify_signature": False})
    tampered = f"{header}.{segment({**claims, 'sub': 'someone-else'})}.{signature}"
    assert error_of(await op.authorize(id_token_hint=tampered))["error"] == "invalid_request"
    bob = await op.services.accounts.create("bob", PASSWORD)
    bobs = op.services.id_tokens.issue(
        user=bob,
        client_id=op.rp.client_id,
        nonce=None,
        auth_time=0,
        sid=None,
        access_token=None,
        now=int(op.services.clock.now()),
    )
    assert error_of(await op.authorize(prompt="none", id_token_hint=bobs))["error"] == (
        "login_required"
    )
    asked = await op.authorize(id_token_hint=bobs)
    assert "/login" in asked.headers["location"]  # alice is signed in, bob is named: log in


async def oidcc_id_token_hint_of_another_client(op: OP) -> None:
    """Not a suite id: a hint issued to another client is refused (its aud is not ours)."""
    _, first = await op.sign_in()
    error = error_of(await op.authorize(op.second, id_token_hint=first["id_token"]))
    assert error["error"] == "invalid_request"


async def oidcc_login_hint(op: OP) -> None:
    response = await op.authorize(login_hint=USERNAME)
    page = await op.http.get(response.headers["location"])
    assert read_form(page.text).fields["username"] == USERNAME


async def oidcc_ui_locales(op: OP) -> None:
    _, tokens = await op.sign_in(ui_locales="se")
    await op.id_token(tokens["id_token"])


async def oidcc_claims_locales(op: OP) -> None:
    _, tokens = await op.sign_in(claims_locales="se")
    await op.id_token(tokens["id_token"])


async def oidcc_ensure_request_with_acr_values_succeeds(op: OP) -> None:
    _, tokens = await op.sign_in(acr_values="1 2")
    await op.id_token(tokens["id_token"])


async def _code_reuse(op: OP, wait: float) -> None:
    verifier, challenge = pkce_pair()
    landed = await browser_sign_in(op.http, op.rp, challenge)
    location = landed.headers["location"]
    tokens = await redeem(op.http, op.rp, location, verifier)
    op.services.clock.advance(wait)  # type: ignore[attr-defined]
    replay = await op.http.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": query_of(location)["code"],
            "redirect_uri": op.rp.redirect_uri,
            "client_id": op.rp.client_id,
            "code_verifier": verifier,
        },
    )
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    # RFC 6749 §4.1.2: the tokens issued from the code are revoked.
    assert (await op.userinfo(tokens["access_token"])).status_code == 401


async def oidcc_codereuse(op: OP) -> None:
    await _code_reuse(op, 0)


async def oidcc_codereuse_30seconds(op: OP) -> None:
    await _code_reuse(op, 30)


async def oidcc_ensure_registered_redirect_uri(op: OP) -> None:
    error_page(await op.authorize(redirect_uri="https://evil.example/cb"))
    error_page(await op.authorize(redirect_uri=op.rp.redirect_uri + "/x"))


async def oidcc_ensure_redirect_uri_in_authorization_request(op: OP) -> None:
    _, challenge = pkce_pair()
    params = authorize_params(op.rp, challenge)
    del params["redirect_uri"]  # one is registered, but OIDC Core §3.1.2.1 requires it
    error_page(await op.http.get("/oauth/authorize", params=params))


async def _confidential_flow(op: OP, auth: str) -> None:
    app = op.confidential
    verifier, challenge = pkce_pair()
    landed = await browser_sign_in(op.http, app, challenge)
    form = {
        "grant_type": "authorization_code",
        "code": query_of(landed.headers["location"])["code"],
        "redirect_uri": app.redirect_uri,
        "code_verifier": verifier,
    }
    assert app.secret is not None
    if auth == "basic":
        response = await op.http.post("/oauth/token", data=form, auth=(app.client_id, app.secret))
    else:
        response = await op.http.post(
            "/oauth/token",
            data={**form, "client_id": app.client_id, "client_secret": app.secret},
        )
    assert response.status_code == 200, response.text
    assert (
        pyjwt.decode(response.json()["id_token"], options={"verify_signature": False})["aud"]
        == app.client_id
    )


async def oidcc_server_client_secret_basic(op: OP) -> None:
    await _confidential_flow(op, "basic")


async def oidcc_server_client_secret_post(op: OP) -> None:
    await _confidential_flow(op, "post")


async def oidcc_unsigned_request_object_supported_correctly_or_rejected_as_unsupported(
    op: OP,
) -> None:
    unsigned = f"{segment({'alg': 'none'})}.{segment({'scope': 'openid email'})}."
    error = error_of(await op.authorize(request=unsigned))
    assert error["error"] == "request_not_supported"
    assert error["state"] == "st-1"
    metadata = (await op.http.get("/.well-known/openid-configuration")).json()
    assert metadata["request_parameter_supported"] is False


async def oidcc_ensure_request_object_with_redirect_uri(op: OP) -> None:
    error = error_of(await op.authorize(request_uri="https://rp.example/request.jwt"))
    assert error["error"] == "request_uri_not_supported"


async def oidcc_claims_essential(op: OP) -> None:
    # claims_parameter_supported is false: the parameter is ignored, the flow succeeds.
    _, tokens = await op.sign_in(claims='{"userinfo":{"name":{"essential":true}}}')
    assert (await op.userinfo(tokens["access_token"])).status_code == 200


async def oidcc_refresh_token(op: OP) -> None:
    _, tokens = await op.sign_in(scope="openid offline_access")
    first = await op.id_token(tokens["id_token"])
    refreshed = await op.http.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": op.rp.client_id,
        },
    )
    assert refreshed.status_code == 200, refreshed.text
    again = await op.id_token(refreshed.json()["id_token"], nonce=None)
    for claim in ("iss", "sub", "aud", "auth_time"):  # OIDC Core §12.2
        assert again[claim] == first[claim], claim
    # Another client cannot use this client's refresh token.
    stolen = await op.http.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refreshed.json()["refresh_token"],
            "client_id": op.second.client_id,
        },
    )
    assert stolen.status_code == 400
    assert stolen.json()["error"] == "invalid_grant"


async def oidcc_ensure_request_with_valid_pkce_succeeds(op: OP) -> None:
    _, tokens = await op.sign_in()
    assert tokens["access_token"]
    # And a wrong verifier fails (RFC 7636 §4.6).
    _, challenge = pkce_pair()
    landed = await browser_sign_in(op.http, op.rp, challenge, prompt="none")
    wrong = await op.http.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": query_of(landed.headers["location"])["code"],
            "redirect_uri": op.rp.redirect_uri,
            "client_id": op.rp.client_id,
            "code_verifier": pkce_pair()[0],
        },
    )
    assert wrong.json()["error"] == "invalid_grant"


async def oidcc_ensure_post_request_succeeds(op: OP) -> None:
    await op.sign_in()  # signed in, so POST /oauth/authorize answers with the code at once
    verifier, challenge = pkce_pair()
    response = await op.http.post(
        "/oauth/authorize", data=authorize_params(op.rp, challenge, prompt="none")
    )
    tokens = await redeem(op.http, op.rp, response.headers["location"], verifier)
    await op.id_token(tokens["id_token"])


async def oidcc_discovery_endpoint_verification(op: OP) -> None:
    metadata = (await op.http.get("/.well-known/openid-configuration")).json()
    assert metadata["issuer"] == op.issuer
    for member in (
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "end_session_endpoint",
    ):
        assert metadata[member].startswith(op.issuer + "/"), member
    assert "code" in metadata["response_types_supported"]
    assert "public" in metadata["subject_types_supported"]
    assert "openid" in metadata["scopes_supported"]
    assert "none" not in metadata["id_token_signing_alg_values_supported"]
    jwks = (await op.http.get("/.well-known/jwks.json")).json()["keys"]
    kids = [key["kid"] for key in jwks]
    assert len(kids) == len(set(kids))
    for key in jwks:
        assert key["kty"] != "oct"  # no symmetric keys
        assert not {"d", "p", "q", "dp", "dq", "qi", "k"} & key.keys()  # no private parts


CHECKS: dict[str, Callable[[OP], Awaitable[None]]] = {
    "oidcc-server": oidcc_server,
    "oidcc-response-type-missing": oidcc_response_type_missing,
    "oidcc-userinfo-get": oidcc_userinfo_get,
    "oidcc-userinfo-post-header": oidcc_userinfo_post_header,
    "oidcc-userinfo-post-body": oidcc_userinfo_post_body,
    "oidcc-ensure-request-without-nonce-succeeds-for-code-flow": (
        oidcc_ensure_request_without_nonce_succeeds_for_code_flow
    ),
    "oidcc-scope-profile": oidcc_scope_profile,
    "oidcc-scope-email": oidcc_scope_email,
    "oidcc-ensure-other-scope-order-succeeds": oidcc_ensure_other_scope_order_succeeds,
    "oidcc-display-page": oidcc_display_page,
    "oidcc-display-popup": oidcc_display_popup,
    "oidcc-prompt-login": oidcc_prompt_login,
    "oidcc-prompt-none-not-logged-in": oidcc_prompt_none_not_logged_in,
    "oidcc-prompt-none-logged-in": oidcc_prompt_none_logged_in,
    "oidcc-max-age-1": oidcc_max_age_1,
    "oidcc-max-age-10000": oidcc_max_age_10000,
    "oidcc-ensure-request-with-unknown-parameter-succeeds": (
        oidcc_ensure_request_with_unknown_parameter_succeeds
    ),
    "oidcc-id-token-hint": oidcc_id_token_hint,
    "id-token-hint-of-another-client": oidcc_id_token_hint_of_another_client,
    "oidcc-login-hint": oidcc_login_hint,
    "oidcc-ui-locales": oidcc_ui_locales,
    "oidcc-claims-locales": oidcc_claims_locales,
    "oidcc-ensure-request-with-acr-values-succeeds": oidcc_ensure_request_with_acr_values_succeeds,
    "oidcc-codereuse": oidcc_codereuse,
    "oidcc-codereuse-30seconds": oidcc_codereuse_30seconds,
    "oidcc-ensure-registered-redirect-uri": oidcc_ensure_registered_redirect_uri,
    "oidcc-ensure-redirect-uri-in-authorization-request": (
        oidcc_ensure_redirect_uri_in_authorization_request
    ),
    "oidcc-server-client-secret-basic": oidcc_server_client_secret_basic,
    "oidcc-server-client-secret-post": oidcc_server_client_secret_post,
    "oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported": (
        oidcc_unsigned_request_object_supported_correctly_or_rejected_as_unsupported
    ),
    "oidcc-ensure-request-object-with-redirect-uri": oidcc_ensure_request_object_with_redirect_uri,
    "oidcc-claims-essential": oidcc_claims_essential,
    "oidcc-refresh-token": oidcc_refresh_token,
    "oidcc-ensure-request-with-valid-pkce-succeeds": oidcc_ensure_request_with_valid_pkce_succeeds,
    "oidcc-ensure-post-request-succeeds": oidcc_ensure_post_request_succeeds,
    "oidcc-discovery-endpoint-verification": oidcc_discovery_endpoint_verification,
}


@pytest.mark.parametrize("test_id", list(CHECKS))
async def test_conformance(op: OP, test_id: str) -> None:
    await CHECKS[test_id](op)
