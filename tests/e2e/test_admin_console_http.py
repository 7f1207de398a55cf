"""The admin console through the ASGI app, posting its forms as a browser would: the login
redirect (with its allowlisted return), 403 for a signed-in non-admin (and at once when the
flag is withdrawn), every page for an admin, every POST refused without or with a wrong CSRF
token, a created client's secret shown once and working at the token endpoint, a rotated
secret replacing the old one, a disabled user's login failing, "sign out everywhere"."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from oauth_server.services import Services
from oauth_server.web.api import FastRouter
from tests.signin import PASSWORD, USERNAME, account_login, browser_for, read_form

pytestmark = pytest.mark.asyncio

ADMIN = "root"
ADMIN_PASSWORD = "the admin's long password 7"
SECRET = re.compile(r'<code id="client-secret">([^<]+)</code>')
CLIENT_ID = re.compile(r'<code id="client-id">([^<]+)</code>')


@pytest.fixture
async def people(app_svc: Services) -> dict[str, str]:
    root = await app_svc.accounts.create(ADMIN, ADMIN_PASSWORD, name="Root")
    await app_svc.accounts.set_admin(root.user_id, True)
    alice = await app_svc.accounts.create(USERNAME, PASSWORD, name="Alice Example")
    return {ADMIN: root.user_id, USERNAME: alice.user_id}


@pytest.fixture
async def admin(app: FastRouter, people: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with browser_for(app) as http:
        done = await account_login(http, username=ADMIN, password=ADMIN_PASSWORD)
        assert done.status_code == 303, done.text
        yield http


async def csrf(http: httpx.AsyncClient, page: str = "/admin/clients") -> str:
    answer = await http.get(page)
    assert answer.status_code == 200, answer.text
    return read_form(answer.text).fields["csrf_token"]


async def token(http: httpx.AsyncClient, client_id: str, secret: str) -> httpx.Response:
    return await http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret),
    )


async def create_client(http: httpx.AsyncClient, **fields: str) -> httpx.Response:
    data = {
        "csrf_token": await csrf(http),
        "name": "Billing robot",
        "client_type": "confidential",
        "grant_client_credentials": "on",
        "scopes": "restaurants:read",
        "redirect_uris": "",
        **fields,
    }
    return await http.post("/admin/clients/create", data=data)


async def test_not_signed_in_redirects_to_login_which_returns_to_admin(
    app: FastRouter, people: dict[str, str]
) -> None:
    async with browser_for(app) as http:
        for path in ("/admin", "/admin/clients", "/admin/users", "/admin/keys", "/admin/audit"):
            answer = await http.get(path)
            assert answer.status_code == 303, path
            assert answer.headers["location"] == "/account/login?return=/admin"
        page = await http.get("/account/login?return=/admin")
        form = read_form(page.text)
        assert form.actions == ["/account/login?return=/admin"]
        done = await http.post(
            form.actions[0],
            data={
                "csrf_token": form.fields["csrf_token"],
                "username": ADMIN,
                "password": ADMIN_PASSWORD,
            },
        )
        assert done.status_code == 303
        assert done.headers["location"] == "/admin"


async def test_login_return_is_an_allowlist_never_an_open_redirect(
    app: FastRouter, people: dict[str, str]
) -> None:
    async with browser_for(app) as http:
        for wanted in ("https://evil.example/", "//evil.example", "/admin/../x", "/oauth/token"):
            page = await http.get("/account/login", params={"return": wanted})
            form = read_form(page.text)
            assert form.actions == ["/account/login"], wanted
            done = await http.post(
                "/account/login",
                params={"return": wanted},
                data={
                    "csrf_token": form.fields["csrf_token"],
                    "username": ADMIN,
                    "password": ADMIN_PASSWORD,
                },
            )
            assert done.headers["location"] == "/account", wanted
            http.cookies.clear()


async def test_non_admin_gets_403_and_withdrawal_counts_at_once(
    app: FastRouter, app_svc: Services, people: dict[str, str], admin: httpx.AsyncClient
) -> None:
    async with browser_for(app) as http:
        assert (await account_login(http)).status_code == 303
        for path in ("/admin/clients", "/admin/users", "/admin/keys", "/admin/audit"):
            answer = await http.get(path)
            assert answer.status_code == 403, path
            assert "Administrators only" in answer.text
            assert "Create a client" not in answer.text
        refused = await http.post("/admin/keys/rotate", data={"csrf_token": "x"})
        assert refused.status_code == 403
    assert (await admin.get("/admin/users")).status_code == 200
    await app_svc.accounts.set_admin(people[ADMIN], False)
    assert (await admin.get("/admin/users")).status_code == 403


async def test_admin_sees_every_page_no_store_with_page_headers(
    admin: httpx.AsyncClient, app_svc: Services
) -> None:
    await app_svc.audit.flush()
    for path, marker in (
        ("/admin/clients", "Create a client"),
        ("/admin/users", USERNAME),
        ("/admin/keys", "Rotate signing key"),
        ("/admin/audit", "login_succeeded"),
    ):
        answer = await admin.get(path)
        assert answer.status_code == 200, path
        assert marker in answer.text, path
        assert answer.headers["cache-control"] == "no-store"
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
        assert answer.headers["x-content-type-options"] == "nosniff"
    assert (await admin.get("/admin")).headers["location"] == "/admin/clients"


async def test_every_post_without_or_with_a_wrong_csrf_token_is_refused(
    admin: httpx.AsyncClient, app_svc: Services, people: dict[str, str]
) -> None:
    clients_before = await app_svc.storage.clients.list()
    keys_before = len(app_svc.keys.describe())
    for path, data in (
        ("/admin/clients/create", {"name": "x", "grant_client_credentials": "on"}),
        ("/admin/clients/update", {"client_id": "x", "scopes": "openid"}),
        ("/admin/clients/rotate", {"client_id": "x"}),
        ("/admin/users/disable", {"user_id": people[USERNAME], "disabled": "true"}),
        ("/admin/users/sign-out", {"user_id": people[USERNAME]}),
        ("/admin/keys/rotate", {}),
    ):
        for token_value in (None, "wrong", await csrf(admin, "/account")):
            data = dict(data)
            if token_value is not None:
                data["csrf_token"] = token_value
            answer = await admin.post(path, data=data)
            assert answer.status_code == 403, (path, token_value)
            assert "This form cannot be accepted" in answer.text
    assert await app_svc.storage.clients.list() == clients_before
    assert len(app_svc.keys.describe()) == keys_before
    alice = await app_svc.accounts.get(people[USERNAME])
    assert alice is not None
    assert not alice.disabled


async def test_created_secret_is_shown_once_works_and_rotation_replaces_it(
    admin: httpx.AsyncClient,
) -> None:
    created = await create_client(admin)
    assert created.status_code == 200, created.text
    assert created.headers["cache-control"] == "no-store"
    secret = SECRET.search(created.text)
    client_id = CLIENT_ID.search(created.text)
    assert secret
    assert client_id
    ok = await token(admin, client_id[1], secret[1])
    assert ok.status_code == 200, ok.text
    listing = await admin.get("/admin/clients", params={"q": "billing"})
    assert client_id[1] in listing.text
    assert secret[1] not in listing.text
    assert client_id[1] not in (await admin.get("/admin/clients", params={"q": "zzz"})).text

    rotated = await admin.post(
        "/admin/clients/rotate", data={"csrf_token": await csrf(admin), "client_id": client_id[1]}
    )
    assert rotated.status_code == 200
    new_secret = SECRET.search(rotated.text)
    assert new_secret
    assert new_secret[1] != secret[1]
    assert (await token(admin, client_id[1], secret[1])).status_code == 401
    assert (await token(admin, client_id[1], new_secret[1])).status_code == 200


async def test_edit_redirect_uris_and_scopes(admin: httpx.AsyncClient, app_svc: Services) -> None:
    new = await app_svc.registry.create(
        name="Menu Planner",
        grant_types=("authorization_code",),
        scopes=("openid",),
        client_type="public",
        redirect_uris=("https://menu.example/cb",),
    )
    cid = new.client.client_id
    answer = await admin.post(
        "/admin/clients/update",
        data={
            "csrf_token": await csrf(admin),
            "client_id": cid,
            "scopes": "openid profile",
            "redirect_uris": "https://menu.example/cb\nhttps://menu.example/cb2",
        },
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/admin/clients?done=updated"
    client = await app_svc.storage.clients.get(client_id=cid)
    assert client is not None
    assert client.scopes == {"openid", "profile"}
    assert client.redirect_uris == ("https://menu.example/cb", "https://menu.example/cb2")
    bad = await admin.post(
        "/admin/clients/update",
        data={"csrf_token": await csrf(admin), "client_id": cid, "redirect_uris": "not a uri"},
    )
    assert bad.status_code == 400


async def test_invalid_client_form_is_a_400_page_not_a_500(admin: httpx.AsyncClient) -> None:
    answer = await create_client(admin, client_type="public", grant_client_credentials="on")
    assert answer.status_code == 400
    assert "The client was not created" in answer.text


async def test_disable_user_fails_their_login_and_sign_out_ends_sessions(
    app: FastRouter, admin: httpx.AsyncClient, app_svc: Services, people: dict[str, str]
) -> None:
    async with browser_for(app) as alice:
        assert (await account_login(alice)).status_code == 303
        assert (await alice.get("/account")).status_code == 200
        ended = await admin.post(
            "/admin/users/sign-out",
            data={"csrf_token": await csrf(admin), "user_id": people[USERNAME]},
        )
        assert ended.status_code == 303
        assert (await alice.get("/account")).status_code == 303  # signed out
        users = await admin.get("/admin/users", params={"q": "ali"})
        assert USERNAME in users.text
        assert ADMIN not in users.text.split("<h1>")[1]
        off = await admin.post(
            "/admin/users/disable",
            data={"csrf_token": await csrf(admin), "user_id": people[USERNAME], "disabled": "true"},
        )
        assert off.status_code == 303
        assert (await account_login(alice)).status_code == 400
        on = await admin.post(
            "/admin/users/disable",
            data={
                "csrf_token": await csrf(admin),
                "user_id": people[USERNAME],
                "disabled": "false",
            },
        )
        assert on.status_code == 303
        assert (await account_login(alice)).status_code == 303


async def test_rotate_signing_key(admin: httpx.AsyncClient, app_svc: Services) -> None:
    before = len(app_svc.keys.describe())
    answer = await admin.post("/admin/keys/rotate", data={"csrf_token": await csrf(admin)})
    assert answer.status_code == 303
    assert len(app_svc.keys.describe()) == before + 1
    assert "A new signing key was published" in (await admin.get(answer.headers["location"])).text


async def test_disabling_twice_is_not_an_error_but_an_unknown_user_is_404(
    admin: httpx.AsyncClient, people: dict[str, str]
) -> None:
    for _ in range(2):
        answer = await admin.post(
            "/admin/users/disable",
            data={"csrf_token": await csrf(admin), "user_id": people[USERNAME], "disabled": "true"},
        )
        assert answer.status_code == 303
    missing = await admin.post(
        "/admin/users/disable",
        data={"csrf_token": await csrf(admin), "user_id": "nobody", "disabled": "true"},
    )
    assert missing.status_code == 404
