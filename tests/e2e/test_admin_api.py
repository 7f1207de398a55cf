"""The admin REST API through the ASGI app, on SQLite and PostgreSQL: who may call it
(RFC 6750 401/403, the admin scope, admin users re-read on every request), validation (422
naming fields), 404/409, pagination and search, a client's whole life through the API alone,
users, consents, sessions, keys, token revocation and the audit trail with the actor."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from oauth_server.services import Services
from oauth_server.storage.models import User
from oauth_server.web.api import FastRouter
from tests.e2e.leaks import leaked
from tests.helpers import FORM, app_services, basic, bearer, eventually, seed_token
from tests.process import CLI, ServerProcess
from tests.signin import REDIRECT, seed_code

API = "/admin/api"
ADMIN_ID = "ops"
CONSOLE_ID = "console"


async def client_credentials(
    http: httpx.AsyncClient, client_id: str, secret: str, scope: str | None = None
) -> httpx.Response:
    form = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
    return await http.post(
        "/oauth/token", data=form, headers={**FORM, "Authorization": basic(client_id, secret)}
    )


async def admin_token(http: httpx.AsyncClient, svc: Services) -> str:
    created = await svc.registry.create(client_id=ADMIN_ID, name="Operations", admin=True)
    assert created.secret is not None
    response = await client_credentials(http, ADMIN_ID, created.secret)
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "admin"
    return str(response.json()["access_token"])


async def user_token(
    http: httpx.AsyncClient, svc: Services, *, is_admin: bool, username: str = "carol"
) -> tuple[str, User]:
    """A token with scope ``admin`` issued by the code grant for a user (the code seeded as
    the authorization endpoint stores it, so the API itself must check the user)."""
    if await svc.storage.clients.get(client_id=CONSOLE_ID) is None:
        await svc.registry.create(
            client_id=CONSOLE_ID,
            client_type="public",
            grant_types=("authorization_code",),
            redirect_uris=(REDIRECT,),
            admin=True,
        )
    user = await svc.accounts.create(username, "correct horse battery", is_admin=is_admin)
    seeded = await seed_code(
        svc.storage, now=svc.clock.now(), client_id=CONSOLE_ID, scope="admin", user_id=user.user_id
    )
    form = {
        "grant_type": "authorization_code",
        "code": seeded.code,
        "redirect_uri": REDIRECT,
        "code_verifier": seeded.verifier,
        "client_id": CONSOLE_ID,
    }
    response = await http.post("/oauth/token", data=form, headers=FORM)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"]), user


@pytest.fixture
async def svc(app: FastRouter) -> Services:
    return app_services(app)


@pytest.fixture
async def admin(client: httpx.AsyncClient, svc: Services) -> dict[str, str]:
    """Authorization headers of the admin client's token."""
    return bearer(await admin_token(client, svc))


# --- Who may call it ---------------------------------------------------------------------------


async def _no_token(http: httpx.AsyncClient, svc: Services) -> dict[str, str]:
    return {}


async def _malformed(http: httpx.AsyncClient, svc: Services) -> dict[str, str]:
    return {"Authorization": "Bearer a b"}


async def _garbage(http: httpx.AsyncClient, svc: Services) -> dict[str, str]:
    return bearer("not-a-token-we-issued")


async def _basic(http: httpx.AsyncClient, svc: Services) -> dict[str, str]:
    return {"Authorization": basic("admin", "getroot")}


async def _wrong_scope(http: httpx.AsyncClient, svc: Services) -> dict[str, str]:
    return bearer(await seed_token(http))  # the demo client: restaurent, no admin


async def _non_admin_user(http: httpx.AsyncClient, svc: Services) -> dict[str, str]:
    token, _ = await user_token(http, svc, is_admin=False)
    return bearer(token)


async def _withdrawn_admin(http: httpx.AsyncClient, svc: Services) -> dict[str, str]:
    token, user = await user_token(http, svc, is_admin=True)
    assert (await http.get(f"{API}/clients", headers=bearer(token))).status_code == 200
    assert await svc.accounts.set_admin(user.user_id, False)
    return bearer(token)


async def _disabled_admin(http: httpx.AsyncClient, svc: Services) -> dict[str, str]:
    token, user = await user_token(http, svc, is_admin=True)
    await svc.storage.users.set_disabled(user_id=user.user_id, disabled=True)  # no revocation
    return bearer(token)


async def _admin_scope_taken_from_client(http: httpx.AsyncClient, svc: Services) -> dict[str, str]:
    token = await admin_token(http, svc)
    await svc.registry.update(ADMIN_ID, scopes=["restaurants:read"])
    return bearer(token)


Credentials = Callable[[httpx.AsyncClient, Services], Awaitable[dict[str, str]]]
REFUSED: list[tuple[str, Credentials, int, str | None]] = [
    ("no token", _no_token, 401, None),
    ("malformed Bearer", _malformed, 400, "invalid_request"),
    ("unknown token", _garbage, 401, "invalid_token"),
    ("Basic instead of Bearer", _basic, 401, None),
    ("token without admin scope", _wrong_scope, 403, "insufficient_scope"),
    ("non-admin user's admin-scoped token", _non_admin_user, 403, "insufficient_scope"),
    ("admin flag withdrawn after issuance", _withdrawn_admin, 403, "insufficient_scope"),
    ("disabled admin user", _disabled_admin, 403, "insufficient_scope"),
    (
        "client no longer has the admin scope",
        _admin_scope_taken_from_client,
        403,
        "insufficient_scope",
    ),
]


@pytest.mark.parametrize(
    ("case", "credentials", "status", "error"), REFUSED, ids=[row[0] for row in REFUSED]
)
@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/clients"), ("POST", "/users"), ("DELETE", "/keys/abc"), ("GET", "/audit")],
)
async def test_who_may_not_call_the_admin_api(
    client: httpx.AsyncClient,
    svc: Services,
    case: str,
    credentials: Credentials,
    status: int,
    error: str | None,
    method: str,
    path: str,
) -> None:
    headers = await credentials(client, svc)
    response = await client.request(method, API + path, headers=headers, json={})
    assert response.status_code == status, response.text
    challenge = response.headers.get("www-authenticate", "")
    assert challenge.startswith("Bearer "), challenge
    assert 'realm="admin"' in challenge
    if error is None:
        assert "error=" not in challenge  # RFC 6750 §3.1: no error code without credentials
    else:
        assert f'error="{error}"' in challenge
        assert response.json()["error"] == error
    if status == 403:
        assert 'scope="admin"' in challenge


async def test_an_admin_users_token_is_accepted_and_audited_with_the_user(
    client: httpx.AsyncClient, svc: Services
) -> None:
    token, user = await user_token(client, svc, is_admin=True)
    response = await client.post(
        f"{API}/clients", headers=bearer(token), json={"client_id": "made-by-carol"}
    )
    assert response.status_code == 201, response.text
    await svc.audit.flush()
    events = await client.get(
        f"{API}/audit",
        headers=bearer(token),
        params={"kind": "client_created", "client_id": "made-by-carol"},
    )
    [event] = events.json()["items"]
    assert event["data"]["actor_client_id"] == CONSOLE_ID
    assert event["data"]["actor_user_id"] == user.user_id


async def test_sign_in_narrows_the_admin_scope_for_a_non_admin_user(
    client: httpx.AsyncClient, svc: Services
) -> None:
    """RFC 6749 §3.3: the code the authorization endpoint stores for a non-admin user has no
    ``admin``, whatever was asked; an admin user's keeps it."""
    from oauth_server.oauth.interaction import SignIn

    signin: SignIn = svc.signin
    plain = await svc.accounts.create("dave", "correct horse battery")
    boss = await svc.accounts.create("erin", "correct horse battery", is_admin=True)
    asked = ("openid", "admin")
    assert await signin._scope_for_user(asked, plain.user_id) == ("openid",)
    assert await signin._scope_for_user(asked, boss.user_id) == asked
    assert await signin._scope_for_user(("openid",), plain.user_id) == ("openid",)


async def test_the_admin_scope_only_comes_with_the_admin_flag(
    client: httpx.AsyncClient, svc: Services, admin: dict[str, str]
) -> None:
    response = await client.post(
        f"{API}/clients", headers=admin, json={"client_id": "sneaky", "scopes": ["admin"]}
    )
    assert response.status_code == 422
    assert "scopes" in response.json()["fields"]
    plain = await client.post(f"{API}/clients", headers=admin, json={"client_id": "plain"})
    assert plain.json()["admin"] is False
    widened = await client.patch(f"{API}/clients/plain", headers=admin, json={"scopes": ["admin"]})
    assert widened.status_code == 422
    assert "scopes" in widened.json()["fields"]


# --- Validation, 404, 409, bad JSON -------------------------------------------------------------

INVALID_BODIES: list[tuple[str, str, Any, str]] = [
    ("/clients", "POST", {"client_id": "has space"}, "client_id"),
    ("/clients", "POST", {"grant_types": ["password"]}, "grant_types.0"),
    ("/clients", "POST", {"colour": "blue"}, "colour"),
    ("/clients", "POST", {"name": "nul\u0000"}, "name"),
    ("/clients", "POST", {"token_format": "paseto"}, "token_format"),
    (
        "/clients",
        "POST",
        {"redirect_uris": ["http://evil.example/cb"], "grant_types": ["authorization_code"]},
        "redirect_uris",
    ),
    (
        "/clients",
        "POST",
        {"client_type": "public", "grant_types": ["client_credentials"]},
        "grant_types",
    ),
    ("/clients", "POST", [], "body"),
    ("/users", "POST", {"username": "x"}, "password"),
    ("/users", "POST", {"username": "no spaces", "password": "long enough pw"}, "username"),
    ("/users", "POST", {"username": "frank", "password": "short"}, "password"),
    (
        "/users",
        "POST",
        {"username": "frank", "password": "long enough pw", "email": "nope"},
        "email",
    ),
    ("/keys/rotate", "POST", {"immediately": "soon"}, "immediately"),
]


@pytest.mark.parametrize(
    ("path", "method", "body", "field"),
    INVALID_BODIES,
    ids=[f"{r[0]}-{r[3]}" for r in INVALID_BODIES],
)
async def test_invalid_fields_are_422_naming_the_field(
    client: httpx.AsyncClient, admin: dict[str, str], path: str, method: str, body: Any, field: str
) -> None:
    response = await client.request(
        method,
        API + path,
        headers={**admin, "Content-Type": "application/json"},
        content=_raw_json(body),
    )
    assert response.status_code == 422, response.text
    payload = response.json()
    assert payload["error"] == "invalid_request"
    assert field in payload["fields"], payload
    assert payload["error_description"]


def _raw_json(body: Any) -> bytes:
    import json

    return json.dumps(body).encode()  # escapes the lone surrogate as \ud800


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/clients", {"limit": "0"}, "limit"),
        ("/clients", {"limit": "abc"}, "limit"),
        ("/clients", {"search": "\x00"}, "search"),
        ("/clients", {"cursor": "no spaces"}, "cursor"),
        ("/audit", {"kind": "made_up"}, "kind"),
        ("/audit", {"since": "yesterday"}, "since"),
        ("/audit", {"cursor": "1.2.3"}, "cursor"),
        ("/audit", {"client_id": "\u00e9"}, "client_id"),
    ],
)
async def test_invalid_query_parameters_are_422(
    client: httpx.AsyncClient, admin: dict[str, str], path: str, params: dict[str, str], field: str
) -> None:
    response = await client.get(API + path, headers=admin, params=params)
    assert response.status_code == 422, response.text
    assert field in response.json()["fields"]


async def test_bad_json_is_400_and_a_big_body_413(
    client: httpx.AsyncClient, svc: Services, admin: dict[str, str]
) -> None:
    headers = {**admin, "Content-Type": "application/json"}
    broken = await client.post(f"{API}/clients", headers=headers, content=b'{"client_id": ')
    assert broken.status_code == 400
    assert broken.json()["error"] == "invalid_request"
    surrogate = await client.post(
        f"{API}/users",
        headers=headers,
        content=b'{"username": "frank", "password": "\\ud800 lone surrogate"}',
    )
    assert surrogate.status_code == 400  # not Unicode, so not JSON (RFC 8259 §8.2)
    form = await client.post(f"{API}/clients", headers={**admin, **FORM}, content=b"a=b")
    assert form.status_code == 400
    big = b'{"name": "' + b"x" * svc.settings.max_body_bytes + b'"}'
    assert (await client.post(f"{API}/clients", headers=headers, content=big)).status_code == 413


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/clients/nobody"),
        ("PATCH", "/clients/nobody"),
        ("DELETE", "/clients/nobody"),
        ("POST", "/clients/nobody/secret"),
        ("POST", "/clients/nobody/revoke-tokens"),
        ("GET", "/clients/%00"),
        ("GET", "/users/0123456789abcdef0123456789abcdef"),
        ("GET", "/users/not-an-id"),
        ("PATCH", "/users/0123456789abcdef0123456789abcdef"),
        ("DELETE", "/users/0123456789abcdef0123456789abcdef"),
        ("POST", "/users/0123456789abcdef0123456789abcdef/disable"),
        ("PUT", "/users/0123456789abcdef0123456789abcdef/admin"),
        ("GET", "/users/0123456789abcdef0123456789abcdef/consents"),
        ("DELETE", "/users/0123456789abcdef0123456789abcdef/sessions"),
        ("POST", "/users/0123456789abcdef0123456789abcdef/revoke-tokens"),
        ("DELETE", "/keys/unknown-kid"),
    ],
)
async def test_unknown_ids_are_404(
    client: httpx.AsyncClient, admin: dict[str, str], method: str, path: str
) -> None:
    response = await client.request(method, API + path, headers=admin, json={})
    assert response.status_code == 404, response.text
    assert response.json()["error"] == "not_found"


async def test_taken_ids_and_usernames_are_409(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    first = await client.post(f"{API}/clients", headers=admin, json={"client_id": "dup"})
    assert first.status_code == 201
    again = await client.post(f"{API}/clients", headers=admin, json={"client_id": "dup"})
    assert again.status_code == 409
    assert again.json()["error"] == "conflict"
    user = {"username": "Grace", "password": "correct horse battery"}
    assert (await client.post(f"{API}/users", headers=admin, json=user)).status_code == 201
    user["username"] = "grace"  # usernames are case-insensitive
    assert (await client.post(f"{API}/users", headers=admin, json=user)).status_code == 409


# --- Pagination and search ----------------------------------------------------------------------


async def test_clients_and_users_page_by_cursor_and_search(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    for number in range(7):
        await client.post(
            f"{API}/clients",
            headers=admin,
            json={"client_id": f"svc-{number}", "name": f"Billing {number % 2}"},
        )
        await client.post(
            f"{API}/users",
            headers=admin,
            json={
                "username": f"user{number}",
                "password": "correct horse battery",
                "email": f"u{number}@example.{'org' if number % 2 else 'com'}",
            },
        )
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        page = (await client.get(f"{API}/clients", headers=admin, params=params)).json()
        assert len(page["items"]) <= 3
        seen += [item["client_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen)
    assert set(seen) == {ADMIN_ID, "admin", *(f"svc-{n}" for n in range(7))}
    found = await client.get(f"{API}/clients", headers=admin, params={"search": "BILLING 1"})
    assert [c["client_id"] for c in found.json()["items"]] == ["svc-1", "svc-3", "svc-5"]
    by_id = await client.get(f"{API}/clients", headers=admin, params={"search": "vc-6"})
    assert [c["client_id"] for c in by_id.json()["items"]] == ["svc-6"]
    wildcard = await client.get(f"{API}/clients", headers=admin, params={"search": "%"})
    assert wildcard.json()["items"] == []  # % is a plain character
    underscore = await client.get(f"{API}/clients", headers=admin, params={"search": "svc_"})
    assert underscore.json()["items"] == []

    users: list[str] = []
    cursor = None
    while True:
        params = {"limit": "4", "search": ".org", **({"cursor": cursor} if cursor else {})}
        page = (await client.get(f"{API}/users", headers=admin, params=params)).json()
        users += [item["username"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert users == ["user1", "user3", "user5"]
    assert all("password" not in key for key in page["items"][0])


# --- A client's whole life, through the API only ------------------------------------------------


async def test_a_client_lifecycle_through_the_api_only(
    client: httpx.AsyncClient, svc: Services, admin: dict[str, str]
) -> None:
    created = await client.post(
        f"{API}/clients",
        headers=admin,
        json={"client_id": "billing", "name": "Billing", "scopes": ["restaurants:read"]},
    )
    assert created.status_code == 201, created.text
    assert created.headers["cache-control"] == "no-store"
    body = created.json()
    secret = body["client_secret"]
    assert len(secret) >= 43
    assert body["scopes"] == ["restaurants:read"]
    assert "secret_hash" not in body
    shown = (await client.get(f"{API}/clients/billing", headers=admin)).json()
    assert "client_secret" not in shown
    assert shown["name"] == "Billing"

    issued = await client_credentials(client, "billing", secret)
    assert issued.status_code == 200, issued.text
    token = issued.json()["access_token"]
    assert (await client.get("/restaurent", headers=bearer(token))).json()[0].get("_id")

    patched = await client.patch(
        f"{API}/clients/billing", headers=admin, json={"name": "Billing v2"}
    )
    assert patched.json()["name"] == "Billing v2"
    assert patched.json()["scopes"] == ["restaurants:read"]

    rotated = await client.post(f"{API}/clients/billing/secret", headers=admin)
    assert rotated.status_code == 200
    new_secret = rotated.json()["client_secret"]
    assert new_secret != secret

    async def old_secret_refused() -> bool:
        return (await client_credentials(client, "billing", secret)).status_code == 401

    await eventually(old_secret_refused)
    assert (await client_credentials(client, "billing", new_secret)).status_code == 200
    assert (await client.get("/restaurent", headers=bearer(token))).status_code == 200

    deleted = await client.delete(f"{API}/clients/billing", headers=admin)
    assert deleted.status_code == 204
    assert (await client.get(f"{API}/clients/billing", headers=admin)).status_code == 404
    refused = await client.get("/api/restaurants", headers=bearer(token))
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    assert (await client_credentials(client, "billing", new_secret)).status_code == 401

    await svc.audit.flush()
    events = await client.get(
        f"{API}/audit",
        headers=admin,
        params={
            "client_id": "billing",
            "kind": "client_created,client_updated,client_secret_rotated,client_deleted",
        },
    )
    kinds = [event["kind"] for event in events.json()["items"]]
    assert kinds[:4] == ["client_deleted", "client_secret_rotated", "client_updated",
                         "client_created"]  # fmt: skip
    changes = [e for e in events.json()["items"] if e["kind"].startswith("client_")]
    assert all(event["data"]["actor_client_id"] == ADMIN_ID for event in changes)
    assert all("actor_user_id" not in event["data"] for event in changes)


async def test_revoking_a_clients_tokens(
    client: httpx.AsyncClient, svc: Services, admin: dict[str, str], clock: Any
) -> None:
    created = (
        await client.post(
            f"{API}/clients", headers=admin, json={"client_id": "rt", "scopes": ["restaurent"]}
        )
    ).json()
    token = (await client_credentials(client, "rt", created["client_secret"])).json()
    assert (
        (await client.get("/restaurent", headers=bearer(token["access_token"])))
        .json()[0]
        .get("_id")
    )
    response = await client.post(f"{API}/clients/rt/revoke-tokens", headers=admin)
    assert response.status_code == 204
    refused = await client.get("/api/restaurants", headers=bearer(token["access_token"]))
    assert refused.status_code == 401


# --- Users ---------------------------------------------------------------------------------------


async def test_user_management(
    client: httpx.AsyncClient, svc: Services, admin: dict[str, str]
) -> None:
    made = await client.post(
        f"{API}/users",
        headers=admin,
        json={"username": "Heidi", "password": "correct horse battery", "name": "Heidi H"},
    )
    assert made.status_code == 201, made.text
    user = made.json()
    uid = user["user_id"]
    assert user["username"] == "heidi"
    assert user["preferred_username"] == "Heidi"
    assert "password" not in str(list(user))
    patched = await client.patch(
        f"{API}/users/{uid}", headers=admin, json={"email": "h@example.com", "name": ""}
    )
    assert patched.json()["email"] == "h@example.com"
    assert patched.json()["name"] == ""
    assert (await client.post(f"{API}/users/{uid}/disable", headers=admin)).json()["disabled"]
    enabled = await client.post(f"{API}/users/{uid}/enable", headers=admin)
    assert enabled.json()["disabled"] is False
    assert (await client.put(f"{API}/users/{uid}/admin", headers=admin)).json()["is_admin"]
    withdrawn = await client.delete(f"{API}/users/{uid}/admin", headers=admin)
    assert withdrawn.json()["is_admin"] is False
    reset = await client.put(
        f"{API}/users/{uid}/password", headers=admin, json={"password": "another good one"}
    )
    assert reset.status_code == 204
    await svc.accounts.authenticate("heidi", "another good one")
    sessions = await client.delete(f"{API}/users/{uid}/sessions", headers=admin)
    assert sessions.json() == {"sessions_ended": 0}
    assert (await client.delete(f"{API}/users/{uid}", headers=admin)).status_code == 204
    assert (await client.get(f"{API}/users/{uid}", headers=admin)).status_code == 404

    await svc.audit.flush()
    events = (
        await client.get(f"{API}/audit", headers=admin, params={"user_id": uid, "limit": "50"})
    ).json()["items"]
    kinds = {event["kind"] for event in events}
    assert {
        "user_created",
        "user_updated",
        "user_disabled",
        "user_enabled",
        "user_admin_granted",
        "user_admin_withdrawn",
        "user_password_changed",
        "user_sessions_ended",
        "user_deleted",
    } <= kinds
    assert all(event["data"]["actor_client_id"] == ADMIN_ID for event in events)


async def test_consents_and_a_users_tokens(
    client: httpx.AsyncClient, svc: Services, admin: dict[str, str]
) -> None:
    _token, user = await user_token(client, svc, is_admin=False, username="ivan")
    await svc.storage.consents.grant(
        user_id=user.user_id, client_id=CONSOLE_ID, scopes=["openid"], now=int(svc.clock.now())
    )
    listed = await client.get(f"{API}/users/{user.user_id}/consents", headers=admin)
    assert listed.json()["items"][0]["client_id"] == CONSOLE_ID
    assert listed.json()["items"][0]["scopes"] == ["openid"]
    gone = await client.delete(f"{API}/users/{user.user_id}/consents/{CONSOLE_ID}", headers=admin)
    assert gone.status_code == 204
    again = await client.delete(f"{API}/users/{user.user_id}/consents/{CONSOLE_ID}", headers=admin)
    assert again.status_code == 404
    assert (await client.get(f"{API}/users/{user.user_id}/consents", headers=admin)).json() == {
        "items": []
    }
    revoked = await client.post(f"{API}/users/{user.user_id}/revoke-tokens", headers=admin)
    assert revoked.status_code == 200
    assert set(revoked.json()) == {"refresh_families_revoked", "sessions_ended"}


async def test_a_users_refresh_tokens_are_revoked(
    client: httpx.AsyncClient, svc: Services, admin: dict[str, str]
) -> None:
    await svc.registry.create(
        client_id="app",
        client_type="public",
        grant_types=("authorization_code", "refresh_token"),
        scopes=("offline_access", "restaurants:read"),
        redirect_uris=(REDIRECT,),
    )
    user = await svc.accounts.create("judy", "correct horse battery")
    seeded = await seed_code(
        svc.storage,
        now=svc.clock.now(),
        client_id="app",
        scope="offline_access restaurants:read",
        user_id=user.user_id,
    )
    form = {
        "grant_type": "authorization_code",
        "code": seeded.code,
        "redirect_uri": REDIRECT,
        "code_verifier": seeded.verifier,
        "client_id": "app",
    }
    tokens = (await client.post("/oauth/token", data=form, headers=FORM)).json()
    refresh = tokens["refresh_token"]
    response = await client.post(f"{API}/users/{user.user_id}/revoke-tokens", headers=admin)
    assert response.json()["refresh_families_revoked"] == 1
    again = await client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh, "client_id": "app"},
        headers=FORM,
    )
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"

    async def access_token_refused() -> bool:  # every process within the sync interval
        response = await client.get("/api/restaurants", headers=bearer(tokens["access_token"]))
        return response.status_code == 401

    await eventually(access_token_refused)


# --- Keys and the audit trail ---------------------------------------------------------------------


async def test_signing_keys_list_rotate_remove(
    client: httpx.AsyncClient, svc: Services, admin: dict[str, str]
) -> None:
    before = (await client.get(f"{API}/keys", headers=admin)).json()["items"]
    assert [key["state"] for key in before] == ["active"]
    rotated = await client.post(f"{API}/keys/rotate", headers=admin)
    assert rotated.status_code == 201
    kid = rotated.json()["kid"]
    states = {
        k["kid"]: k["state"]
        for k in (await client.get(f"{API}/keys", headers=admin)).json()["items"]
    }
    assert states[kid] == "pending"
    old = before[0]["kid"]
    assert (await client.delete(f"{API}/keys/{old}", headers=admin)).status_code == 204
    # The admin token was signed by the removed key: refused now (this process at once).
    assert (await client.get(f"{API}/keys", headers=admin)).status_code == 401
    fresh = bearer(await _fresh_admin_token(client, svc))
    after = {
        k["kid"]: k["state"]
        for k in (await client.get(f"{API}/keys", headers=fresh)).json()["items"]
    }
    assert after[old] == "removed"
    assert "active" in after.values()
    await svc.audit.flush()
    events = (
        await client.get(
            f"{API}/audit",
            headers=fresh,
            params={"kind": "signing_key_removed,signing_key_created"},
        )
    ).json()["items"]
    removed = [e for e in events if e["kind"] == "signing_key_removed"]
    assert removed[0]["data"] == {"kid": old, "actor_client_id": ADMIN_ID}
    assert any(e["data"].get("kid") == kid and e["data"].get("actor_client_id") for e in events)


async def _fresh_admin_token(http: httpx.AsyncClient, svc: Services) -> str:
    rotated = await svc.registry.rotate_secret(ADMIN_ID)
    assert rotated is not None
    assert rotated.secret is not None
    response = await client_credentials(http, ADMIN_ID, rotated.secret)
    return str(response.json()["access_token"])


async def test_audit_events_filter_and_page(
    client: httpx.AsyncClient, svc: Services, admin: dict[str, str], clock: Any
) -> None:
    clock.advance(1)  # after the admin client's own creation
    start = int(clock.now())
    for number in range(5):
        await client.post(f"{API}/clients", headers=admin, json={"client_id": f"a{number}"})
        clock.advance(1)
    await client.post(
        f"{API}/users", headers=admin, json={"username": "kim", "password": "correct horse battery"}
    )
    await svc.audit.flush()
    created = await client.get(
        f"{API}/audit", headers=admin, params={"kind": "client_created", "since": str(start)}
    )
    ids = [e["data"]["client_id"] for e in created.json()["items"]]
    assert ids[:5] == ["a4", "a3", "a2", "a1", "a0"]  # newest first
    window = await client.get(
        f"{API}/audit",
        headers=admin,
        params={"kind": "client_created", "since": str(start + 1), "until": str(start + 3)},
    )
    assert [e["data"]["client_id"] for e in window.json()["items"]] == ["a2", "a1"]
    paged: list[str] = []
    cursor: str | None = None
    while True:
        params = {"kind": "client_created", "limit": "2", "since": str(start)}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get(f"{API}/audit", headers=admin, params=params)).json()
        paged += [e["data"]["client_id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert paged == ["a4", "a3", "a2", "a1", "a0"]
    one = await client.get(f"{API}/audit", headers=admin, params={"client_id": "a3"})
    assert {e["kind"] for e in one.json()["items"]} == {"client_created"}


async def test_the_admin_routes_are_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    admin_paths = [path for path in document["paths"] if path.startswith(API)]
    assert f"{API}/clients/{{client_id}}" in admin_paths
    assert f"{API}/users/{{user_id}}/consents/{{client_id}}" in admin_paths
    assert f"{API}/audit" in admin_paths
    operation = document["paths"][f"{API}/clients"]["post"]
    assert operation["security"] == [{"oauth2": ["admin"]}]
    assert "422" in operation["responses"]
    assert "admin" in document["components"]["securitySchemes"]["oauth2"]["flows"][
        "clientCredentials"]["scopes"]  # fmt: skip


@pytest.mark.slow
async def test_a_client_lifecycle_through_a_real_servers_admin_api(
    database_url: str, tmp_path: Path
) -> None:
    """A real ``oauth-server serve``: an admin client made with the CLI, then a client's whole
    life through the admin API; the server's output never shows a secret or token."""
    env = {
        **os.environ,
        "OAUTH_SERVER_DATABASE_URL": database_url,
        "OAUTH_SERVER_SECRET_KEY_FILE": str(tmp_path / "secret_key"),
        "OAUTH_SERVER_DEMO_DATA": "false",
        "OAUTH_SERVER_LOG_LEVEL": "debug",
        "OAUTH_SERVER_ACCESS_LOG": "true",
        "OAUTH_SERVER_CACHE_SYNC_INTERVAL": "0.1",
    }
    made = await asyncio.to_thread(
        subprocess.run,
        [CLI, "clients", "create", "--admin", "--client-id", "ops", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    ops_secret = json.loads(made.stdout)["client_secret"]
    assert json.loads(made.stdout)["scope"] == "admin"
    server = ServerProcess(env, log=tmp_path / "server.log")
    await asyncio.to_thread(server.start)
    try:
        async with httpx.AsyncClient(base_url=server.url) as http:
            token = (await client_credentials(http, "ops", ops_secret)).json()["access_token"]
            admin = bearer(token)
            assert (await http.get(f"{API}/clients")).status_code == 401
            created = await http.post(
                f"{API}/clients",
                headers=admin,
                json={"client_id": "svc", "scopes": ["restaurants:read"]},
            )
            assert created.status_code == 201, created.text
            secret = created.json()["client_secret"]
            svc_token = (await client_credentials(http, "svc", secret)).json()["access_token"]
            assert (await http.get("/restaurent", headers=bearer(svc_token))).status_code == 200
            rotated = (await http.post(f"{API}/clients/svc/secret", headers=admin)).json()
            new_secret = rotated["client_secret"]
            assert (await client_credentials(http, "svc", secret)).status_code == 401
            assert (await client_credentials(http, "svc", new_secret)).status_code == 200
            assert (await http.delete(f"{API}/clients/svc", headers=admin)).status_code == 204
            refused = await http.get("/api/restaurants", headers=bearer(svc_token))
            assert refused.status_code == 401
            assert (await client_credentials(http, "svc", new_secret)).status_code == 401
    finally:
        await asyncio.to_thread(server.stop)
    output = server.output()
    # The access log was on: one request line, by route template (never the raw path).
    assert re.search(rf"oauth_server\.request: DELETE {API}/clients/\S+ 204", output), output[
        -2000:
    ]
    assert leaked(output, [ops_secret, token, secret, new_secret, svc_token]) == []


async def test_no_admin_client_exists_by_default(svc: Services) -> None:
    """Development seeds a demo client (named ``admin``, scope ``restaurent``) but no admin
    client: the banner says how to make one."""
    assert [client.client_id for client in await svc.registry.list()] == ["admin"]
    assert not any("admin" in client.scopes for client in await svc.registry.list())
