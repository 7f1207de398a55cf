"""Registering sign-in clients: the ``clients`` commands with client types and redirect URIs
(click's runner, on each database), and what the token endpoint makes of a public client."""

from __future__ import annotations

import json

import httpx
import pytest

from oauth_server.web.api import FastRouter
from tests.helpers import FORM, app_services, basic

SIGN_IN_SCOPE = "openid profile email offline_access restaurants:read"


def test_a_public_client_is_registered_shown_and_updated(run) -> None:  # type: ignore[no-untyped-def]
    created = run(
        "clients",
        "create",
        "--client-id",
        "my-app",
        "--public",
        "--redirect-uri",
        "https://app.example/callback",
        "--redirect-uri",
        "http://127.0.0.1/callback",
        "--redirect-uri",
        "com.example.app:/callback",
        "--post-logout-redirect-uri",
        "https://app.example/",
        "--grant-type",
        "authorization_code",
        "--grant-type",
        "refresh_token",
        "--scope",
        SIGN_IN_SCOPE,
        "--skip-consent",
        "--name",
        "My App",
        "--json",
    )
    assert created.exit_code == 0, created.output
    data = json.loads(created.stdout)
    assert "client_secret" not in data
    assert "secret" not in created.output.lower()
    expected = {
        "client_id": "my-app",
        "name": "My App",
        "client_type": "public",
        "token_endpoint_auth_methods": ["none"],
        "grant_types": ["authorization_code", "refresh_token"],
        "redirect_uris": [
            "https://app.example/callback",
            "http://127.0.0.1/callback",
            "com.example.app:/callback",
        ],
        "post_logout_redirect_uris": ["https://app.example/"],
        "require_consent": False,
        "require_pkce": True,
        "scope": " ".join(sorted(SIGN_IN_SCOPE.split())),
    }
    assert {key: data[key] for key in expected} == expected
    shown = json.loads(run("clients", "show", "my-app", "--json").stdout)
    assert {key: shown[key] for key in expected} == expected
    text = run("clients", "show", "my-app")
    assert "client_type: public" in text.output
    assert "redirect_uris: https://app.example/callback http://127.0.0.1/callback" in text.output

    updated = run(
        "clients",
        "update",
        "my-app",
        "--redirect-uri",
        "http://[::1]/cb",
        "--post-logout-redirect-uri",
        "https://app.example/bye",
        "--scope",
        "openid restaurants:read",
        "--require-consent",
        "--json",
    )
    assert updated.exit_code == 0, updated.output
    after = json.loads(run("clients", "show", "my-app", "--json").stdout)
    assert after["redirect_uris"] == ["http://[::1]/cb"]
    assert after["post_logout_redirect_uris"] == ["https://app.example/bye"]
    assert after["scope"] == "openid restaurants:read"
    assert after["require_consent"] is True
    assert after["client_type"] == "public"
    skipped = run("clients", "update", "my-app", "--skip-consent", "--json")
    assert json.loads(skipped.stdout)["require_consent"] is False
    assert json.loads(skipped.stdout)["redirect_uris"] == ["http://[::1]/cb"]
    assert "public" in run("clients", "list").output
    rotated = run("clients", "rotate-secret", "my-app")
    assert rotated.exit_code == 1
    assert "a public client has no secret to rotate" in rotated.output
    assert json.loads(run("clients", "show", "my-app", "--json").stdout)["client_type"] == "public"


def test_a_confidential_sign_in_client_gets_a_secret_once(run) -> None:  # type: ignore[no-untyped-def]
    created = run(
        "clients",
        "create",
        "--client-id",
        "web",
        "--redirect-uri",
        "https://web.example/cb",
        "--grant-type",
        "authorization_code",
        "--grant-type",
        "client_credentials",
        "--auth-method",
        "client_secret_basic",
        "--no-require-pkce",
        "--scope",
        "openid restaurants:read",
    )
    assert created.exit_code == 0, created.output
    assert "client_secret: " in created.output
    shown = json.loads(run("clients", "show", "web", "--json").stdout)
    assert shown["client_type"] == "confidential"
    assert shown["token_endpoint_auth_methods"] == ["client_secret_basic"]
    assert shown["require_pkce"] is False
    assert shown["require_consent"] is True
    plain = json.loads(run("clients", "create", "--client-id", "svc", "--json").stdout)
    assert plain["token_endpoint_auth_methods"] == ["client_secret_basic", "client_secret_post"]
    assert plain["grant_types"] == ["client_credentials"]


PUBLIC = ("clients", "create", "--public", "--grant-type", "authorization_code")


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ((*PUBLIC, "--redirect-uri", "javascript:alert(1)"), "javascript: scheme is never allowed"),
        ((*PUBLIC, "--redirect-uri", "JaVaScRiPt:alert(1)"), "javascript: scheme is never allowed"),
        ((*PUBLIC, "--redirect-uri", "data:text/html,x"), "data: scheme is never allowed"),
        ((*PUBLIC, "--redirect-uri", "https://app.example/cb#x"), "has a fragment"),
        ((*PUBLIC, "--redirect-uri", "http://app.example/cb"), "must use https"),
        ((*PUBLIC, "--redirect-uri", "https://good.example@evil.example"), "userinfo"),
        ((*PUBLIC, "--redirect-uri", "myapp:/cb"), "private-use scheme"),
        ((*PUBLIC, "--redirect-uri", "/relative"), "not an absolute URI"),
        ((*PUBLIC, "--redirect-uri", "https://*.app.example/cb"), "wildcard"),
        (PUBLIC, "needs a redirect URI"),
        (
            ("clients", "create", "--public", "--grant-type", "client_credentials"),
            "client_credentials is for confidential clients",
        ),
        ((*PUBLIC, "--redirect-uri", "https://a.example", "--no-require-pkce"), "must use PKCE"),
        (
            (*PUBLIC, "--redirect-uri", "https://a.example", "--auth-method", "client_secret_post"),
            "a public client has no secret",
        ),
        (("clients", "create", "--scope", "openid"), "scope openid needs a signed-in user"),
        (("clients", "update", "ghost", "--skip-consent"), "no client 'ghost'"),
    ],
)
def test_invalid_registrations_exit_1_naming_the_reason(  # type: ignore[no-untyped-def]
    run, args: tuple[str, ...], reason: str
) -> None:
    result = run(*args)
    assert result.exit_code == 1, result.output
    assert reason in result.output
    assert "Traceback" not in result.output


def test_an_invalid_update_names_the_uri_and_changes_nothing(run) -> None:  # type: ignore[no-untyped-def]
    assert (
        run(*PUBLIC, "--client-id", "app", "--redirect-uri", "https://a.example/cb").exit_code == 0
    )
    result = run("clients", "update", "app", "--redirect-uri", "https://a.example/cb\\@evil")
    assert result.exit_code == 1
    assert "invalid redirect URI 'https://a.example/cb\\\\@evil'" in result.output
    shown = json.loads(run("clients", "show", "app", "--json").stdout)
    assert shown["redirect_uris"] == ["https://a.example/cb"]


# --- a public client at the token endpoint -------------------------------------------------


async def register_public(app: FastRouter) -> None:
    await app_services(app).registry.create(
        client_id="spa",
        client_type="public",
        grant_types=("authorization_code", "refresh_token"),
        scopes=SIGN_IN_SCOPE.split(),
        redirect_uris=("http://127.0.0.1/callback",),
    )


async def test_a_public_client_cannot_use_client_credentials(
    app: FastRouter, client: httpx.AsyncClient
) -> None:
    await register_public(app)
    for body in (
        {"grant_type": "client_credentials", "client_id": "spa"},
        {"grant_type": "client_credentials", "client_id": "spa", "scope": "restaurants:read"},
    ):
        response = await client.post("/oauth/token", data=body, headers=FORM)
        assert response.status_code == 401, response.text
        assert response.json()["error"] == "invalid_client"
        assert "access_token" not in response.text
    json_body = await client.post(
        "/oauth/token", json={"grant_type": "client_credentials", "client_id": "spa"}
    )
    assert (json_body.status_code, json_body.json()["error"]) == (401, "invalid_client")


@pytest.mark.parametrize("secret", ["", "anything", "getroot"])
async def test_a_public_client_cannot_authenticate_with_a_secret(
    app: FastRouter, client: httpx.AsyncClient, secret: str
) -> None:
    await register_public(app)
    for grant_type in ("client_credentials", "authorization_code"):
        body = {"grant_type": grant_type, "client_id": "spa", "client_secret": secret}
        posted = await client.post("/oauth/token", data=body, headers=FORM)
        expected = (401, "invalid_client")
        if secret == "" and grant_type == "authorization_code":
            # RFC 6749 §3.1: an empty parameter is an omitted one, so this is `none` — the
            # public client authenticates, and the missing code is the request's fault.
            expected = (400, "invalid_request")
        assert (posted.status_code, posted.json()["error"]) == expected
        assert posted.json()["error"] != "invalid_scope"
    headers = {**FORM, "Authorization": basic("spa", secret)}
    response = await client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers=headers
    )
    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")
    assert response.headers["www-authenticate"].startswith("Basic ")
    introspected = await client.post(
        "/oauth/introspect", data={"token": "x", "client_id": "spa"}, headers=FORM
    )
    assert introspected.status_code == 401


async def test_client_credentials_for_openid_stays_invalid_scope(
    app: FastRouter, client: httpx.AsyncClient
) -> None:
    # The demo client has no openid scope; a client registered for sign-in too has it, but
    # client_credentials has no user to sign in: invalid_scope for both, as before.
    created = await app_services(app).registry.create(
        client_id="web",
        grant_types=("client_credentials", "authorization_code"),
        scopes=("openid", "profile", "restaurants:read"),
        redirect_uris=("https://web.example/cb",),
    )
    assert created.secret is not None
    for client_id, secret in (("admin", "getroot"), ("web", created.secret)):
        for scope in ("openid", "openid restaurants:read", "profile"):
            response = await client.post(
                "/oauth/token",
                data={"grant_type": "client_credentials", "scope": scope},
                headers={**FORM, "Authorization": basic(client_id, secret)},
            )
            assert (response.status_code, response.json()["error"]) == (400, "invalid_scope")
    defaulted = await client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={**FORM, "Authorization": basic("web", created.secret)},
    )
    assert defaulted.status_code == 200, defaulted.text
    assert defaulted.json()["scope"] == "restaurants:read"
    metadata = (await client.get("/.well-known/oauth-authorization-server")).json()
    assert {"openid", "profile", "email", "offline_access"} <= set(metadata["scopes_supported"])
