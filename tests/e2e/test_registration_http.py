"""Dynamic client registration (RFC 7591) and management (RFC 7592) through the ASGI app, on
SQLite and PostgreSQL: off by default; initial access tokens (missing, wrong, revoked,
expired, used up); every RFC 7591 §3.2.2 error code; policy refusals; the management
endpoints and the RFC 7592 §2.2 update rules; deletion voiding the client's tokens; the rate
limit; the audit trail; and a dynamically registered client working at the token and
authorization endpoints."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest

from oauth_server.clock import FrozenClock
from oauth_server.services import Services
from oauth_server.storage import Storage
from tests.helpers import basic, bearer

pytestmark = pytest.mark.settings(
    registration="initial-token",
    registration_grant_types="authorization_code,refresh_token,client_credentials",
    registration_scopes="openid profile offline_access restaurants:read",
    registration_redirect_uri_hosts="app.example,*.example.org",
    # The default (20/hour) would stop the longer tests; the rate-limit test sets its own.
    rate_limit_registrations_per_address="1000/minute",
)

WEB: dict[str, Any] = {"redirect_uris": ["https://app.example/cb"], "client_name": "App"}
MACHINE: dict[str, Any] = {"grant_types": ["client_credentials"], "scope": "restaurants:read"}
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln"


async def events(storage: Storage) -> list[tuple[str, Any]]:
    rows = await storage.audit.scan(after=None, limit=10_000)
    return [(row.kind, json.loads(row.data)) for row in rows]


async def initial_token(services: Services, max_clients: int = 5, expires_in: int = 3600) -> str:
    created = await services.initial_tokens.create(max_clients=max_clients, expires_in=expires_in)
    return created.value


async def register(
    client: httpx.AsyncClient, token: str | None, document: dict[str, Any] | bytes
) -> httpx.Response:
    headers = bearer(token) if token else {}
    if isinstance(document, bytes):
        return await client.post(
            "/oauth/register",
            content=document,
            headers={**headers, "content-type": "application/json"},
        )
    return await client.post("/oauth/register", json=document, headers=headers)


def path_of(information: dict[str, Any]) -> str:
    return urlsplit(str(information["registration_client_uri"])).path


def assert_no_store(response: httpx.Response) -> None:
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"


async def registered(
    client: httpx.AsyncClient, services: Services, document: dict[str, Any] = WEB
) -> dict[str, Any]:
    response = await register(client, await initial_token(services), document)
    assert response.status_code == 201, response.text
    information: dict[str, Any] = response.json()
    return information


@pytest.mark.settings(registration="off")
async def test_off_by_default_no_endpoint_and_none_advertised(client: httpx.AsyncClient) -> None:
    response = await client.post("/oauth/register", json=WEB)
    assert response.status_code == 404
    assert (await client.get("/oauth/register/x")).status_code == 404
    metadata = (await client.get("/.well-known/openid-configuration")).json()
    assert "registration_endpoint" not in metadata
    assert "registration" not in json.dumps((await client.get("/openapi.json")).json()["paths"])


async def test_enabled_it_is_advertised(client: httpx.AsyncClient, app_svc: Services) -> None:
    for path in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"):
        metadata = (await client.get(path)).json()
        assert metadata["registration_endpoint"] == f"{metadata['issuer']}/oauth/register"
    assert "/oauth/register/{client_id}" in (await client.get("/openapi.json")).json()["paths"]


async def test_registration_response(client: httpx.AsyncClient, app_svc: Services) -> None:
    document = {**WEB, "logo_uri": "https://app.example/l.png", "unknown_member": [1, 2]}
    response = await register(client, await initial_token(app_svc), document)
    assert response.status_code == 201, response.text
    assert_no_store(response)
    body = response.json()
    issuer = app_svc.settings.public_issuer
    assert body["registration_client_uri"] == f"{issuer}/oauth/register/{body['client_id']}"
    assert len(body["client_id"]) >= 22  # 128 random bits: not guessable
    assert len(body["client_secret"]) >= 43  # 256 bits (base64url)
    assert body["client_secret_expires_at"] == 0
    assert body["client_id_issued_at"] == int(app_svc.clock.now())
    assert body["token_endpoint_auth_method"] == "client_secret_basic"
    assert body["grant_types"] == ["authorization_code"]
    assert body["response_types"] == ["code"]
    assert body["scope"] == "openid profile restaurants:read"
    assert body["logo_uri"] == "https://app.example/l.png"
    assert "unknown_member" not in body
    stored = await app_svc.storage.clients.get(client_id=body["client_id"])
    assert stored is not None
    assert stored.require_consent
    assert stored.require_pkce
    # Stored only as hashes: neither the secret nor the registration token is in the rows.
    registration = await app_svc.storage.registrations.get(client_id=body["client_id"])
    assert registration is not None
    rows = repr(stored) + repr(registration) + registration.metadata
    assert body["client_secret"] not in rows
    assert body["registration_access_token"] not in rows


@pytest.mark.parametrize(
    ("authorization", "has_error_code"),
    [
        (None, False),
        ("Basic YTpi", False),
        ("Bearer", False),
        ("Bearer not-a-token", True),
        ("Bearer " + "A" * 59, True),
    ],
)
async def test_registration_needs_an_initial_access_token(
    client: httpx.AsyncClient, authorization: str | None, has_error_code: bool
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = await client.post("/oauth/register", json=WEB, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert_no_store(response)
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="client-registration"')
    # RFC 6750 §3.1: no error code in the challenge when no token was sent.
    assert ('error="invalid_token"' in challenge) is has_error_code


async def test_a_wrong_secret_part_is_refused(client: httpx.AsyncClient, app_svc: Services) -> None:
    token = await initial_token(app_svc)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert (await register(client, forged, WEB)).status_code == 401
    assert (await register(client, token, WEB)).status_code == 201


async def test_revoked_expired_and_used_up_initial_tokens(
    client: httpx.AsyncClient, app_svc: Services, clock: FrozenClock
) -> None:
    revoked = await app_svc.initial_tokens.create(max_clients=5, expires_in=3600)
    assert await app_svc.initial_tokens.revoke(revoked.token.token_id)
    assert (await register(client, revoked.value, WEB)).status_code == 401

    once = await initial_token(app_svc, max_clients=1)
    assert (await register(client, once, WEB)).status_code == 201
    used_up = await register(client, once, WEB)
    assert used_up.status_code == 401, used_up.text
    assert used_up.json()["error"] == "invalid_token"

    expiring = await initial_token(app_svc, expires_in=60)
    clock.advance(61)
    assert (await register(client, expiring, WEB)).status_code == 401
    listed = {t.token_id: t for t in await app_svc.initial_tokens.list()}
    assert listed[revoked.token.token_id].revoked_at is not None


@pytest.mark.parametrize(
    ("document", "error"),
    [
        ({}, "invalid_redirect_uri"),
        ({"redirect_uris": ["https://app.example/cb#frag"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["http://app.example/cb"]}, "invalid_redirect_uri"),
        # The policy's hosts: no open redirect registration.
        ({"redirect_uris": ["https://evil.example/cb"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["https://example.org/cb"]}, "invalid_redirect_uri"),
        ({**WEB, "grant_types": ["implicit"]}, "invalid_client_metadata"),
        ({**WEB, "response_types": ["token"]}, "invalid_client_metadata"),
        ({**WEB, "token_endpoint_auth_method": "private_key_jwt"}, "invalid_client_metadata"),
        ({**WEB, "jwks_uri": "https://app.example/jwks"}, "invalid_client_metadata"),
        # No scope escalation beyond the policy.
        ({**WEB, "scope": "openid restaurants:write"}, "invalid_client_metadata"),
        ({**WEB, "client_name": "Pay\u202eLapyaP"}, "invalid_client_metadata"),
        ({**WEB, "software_statement": "garbage"}, "invalid_software_statement"),
        ({**WEB, "software_statement": JWT}, "unapproved_software_statement"),
        (b"{not json", "invalid_client_metadata"),
        (
            b'{"redirect_uris": [], "redirect_uris": ["https://app.example/cb"]}',
            "invalid_client_metadata",
        ),
        (b'{"a": ' + b"[" * 100 + b"]" * 100 + b"}", "invalid_client_metadata"),
        (b'{"x": "' + b"y" * 20_000 + b'"}', "invalid_client_metadata"),
    ],
)
async def test_every_error_code(
    client: httpx.AsyncClient,
    app_svc: Services,
    document: dict[str, Any] | bytes,
    error: str,
) -> None:
    before = await app_svc.storage.clients.list()
    response = await register(client, await initial_token(app_svc), document)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    assert_no_store(response)
    assert response.json()["error"] == error
    assert response.json()["error_description"]
    assert await app_svc.storage.clients.list() == before


async def test_wrong_content_type_and_oversize_body(
    client: httpx.AsyncClient, app_svc: Services
) -> None:
    token = await initial_token(app_svc)
    form = await client.post(
        "/oauth/register", content=urlencode({"redirect_uris": "x"}),
        headers={**bearer(token), "content-type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert form.status_code == 400
    assert form.json()["error"] == "invalid_client_metadata"
    huge = await register(client, token, b'{"x": "' + b"y" * 70_000 + b'"}')
    assert huge.status_code == 413


async def test_read_the_registration(client: httpx.AsyncClient, app_svc: Services) -> None:
    info = await registered(client, app_svc, {**WEB, "contacts": ["ops@app.example"]})
    token = info["registration_access_token"]
    response = await client.get(path_of(info), headers=bearer(token))
    assert response.status_code == 200, response.text
    assert_no_store(response)
    read = response.json()
    # The same document but the secret, which is kept only as a hash.
    assert read == {k: v for k, v in info.items() if k != "client_secret"}


async def test_registration_access_tokens_are_per_client(
    client: httpx.AsyncClient, app_svc: Services
) -> None:
    first = await registered(client, app_svc)
    second = await registered(client, app_svc)
    cases = [
        (path_of(first), {}, False),
        (path_of(first), bearer("wrong"), True),
        (path_of(first), bearer(first["registration_access_token"][:-1] + "A"), True),
        # Another client's token, on this client's URI: not valid here.
        (path_of(first), bearer(second["registration_access_token"]), True),
        ("/oauth/register/no-such-client", bearer(first["registration_access_token"]), True),
        ("/oauth/register/%00", bearer(first["registration_access_token"]), True),
        # The initial access token is not a registration access token.
        (path_of(first), bearer(await initial_token(app_svc)), True),
    ]
    for path, headers, has_error_code in cases:
        for method in ("GET", "PUT", "DELETE"):
            body = json.dumps({**WEB, "client_id": first["client_id"]}) if method == "PUT" else None
            response = await client.request(
                method, path, headers={**headers, "content-type": "application/json"},
                content=body,
            )  # fmt: skip
            assert response.status_code == 401, (path, method, response.text)
            assert response.json()["error"] == "invalid_token"
            challenge = response.headers["www-authenticate"]
            assert ('error="invalid_token"' in challenge) is has_error_code
    assert await app_svc.storage.clients.get(client_id=first["client_id"]) is not None


async def test_update_replaces_the_metadata(client: httpx.AsyncClient, app_svc: Services) -> None:
    info = await registered(
        client, app_svc, {**WEB, "client_uri": "https://app.example/", "scope": "openid"}
    )
    token, path, client_id = info["registration_access_token"], path_of(info), info["client_id"]
    update = {
        "client_id": client_id,
        "client_name": "Renamed",
        "redirect_uris": ["https://app.example/new", "https://b.example.org/cb"],
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "openid offline_access",
        "token_endpoint_auth_method": "client_secret_post",
    }
    response = await client.put(path, json=update, headers=bearer(token))
    assert response.status_code == 200, response.text
    assert_no_store(response)
    body = response.json()
    assert body["client_name"] == "Renamed"
    assert body["redirect_uris"] == update["redirect_uris"]
    assert body["scope"] == "offline_access openid"
    assert body["token_endpoint_auth_method"] == "client_secret_post"
    # RFC 7592 §2.2: omitted fields are deleted.
    assert "client_uri" not in body
    assert body["registration_access_token"] == token
    assert "client_secret" not in body
    assert (await client.get(path, headers=bearer(token))).json() == body
    # The secret did not change: it still works, by the new method.
    form = {"grant_type": "refresh_token", "refresh_token": "x", "client_id": client_id,
            "client_secret": info["client_secret"]}  # fmt: skip
    token_response = await client.post("/oauth/token", data=form)
    assert token_response.json()["error"] == "invalid_grant"  # authenticated; the grant is bad
    # And the client secret may be sent when it is the current one.
    same = await client.put(
        path, json={**update, "client_secret": info["client_secret"]}, headers=bearer(token)
    )
    assert same.status_code == 200, same.text


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"client_id": None}, "client_id"),
        ({"client_id": "another"}, "client_id"),
        ({"client_secret": "my own chosen secret"}, "client_secret"),
        ({"registration_access_token": "x"}, "registration_access_token"),
        ({"registration_client_uri": "https://x"}, "registration_client_uri"),
        ({"client_secret_expires_at": 5}, "client_secret_expires_at"),
        ({"client_id_issued_at": 5}, "client_id_issued_at"),
        ({"token_endpoint_auth_method": "none"}, "none"),
        ({"scope": "restaurants:write"}, "scope"),
        ({"redirect_uris": ["https://evil.example/cb"]}, "host"),
    ],
)
async def test_update_rules_of_rfc_7592(
    client: httpx.AsyncClient, app_svc: Services, change: dict[str, Any], fragment: str
) -> None:
    info = await registered(client, app_svc)
    document = {**WEB, "client_id": info["client_id"], **change}
    document = {k: v for k, v in document.items() if v is not None}
    response = await client.put(
        path_of(info), json=document, headers=bearer(info["registration_access_token"])
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] in ("invalid_client_metadata", "invalid_redirect_uri")
    assert fragment in response.json()["error_description"]
    stored = await app_svc.storage.clients.get(client_id=info["client_id"])
    assert stored is not None
    assert stored.redirect_uris == ("https://app.example/cb",)


async def test_a_public_client_stays_public(client: httpx.AsyncClient, app_svc: Services) -> None:
    info = await registered(client, app_svc, {**WEB, "token_endpoint_auth_method": "none"})
    assert "client_secret" not in info
    assert "client_secret_expires_at" not in info
    response = await client.put(
        path_of(info),
        json={**WEB, "client_id": info["client_id"]},  # client_secret_basic by default
        headers=bearer(info["registration_access_token"]),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"


async def test_a_machine_client_works_and_deletion_voids_its_tokens(
    client: httpx.AsyncClient, app_svc: Services
) -> None:
    info = await registered(client, app_svc, MACHINE)
    assert info["response_types"] == []
    assert info["redirect_uris"] == []
    credentials = {"Authorization": basic(info["client_id"], info["client_secret"])}
    issued = await client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers=credentials
    )
    assert issued.status_code == 200, issued.text
    access = issued.json()["access_token"]
    assert (await client.get("/restaurent", headers=bearer(access))).status_code == 200
    rat = info["registration_access_token"]
    deleted = await client.delete(path_of(info), headers=bearer(rat))
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert_no_store(deleted)
    # The client, its registration and its tokens are gone, at once in this process.
    assert (await client.get(path_of(info), headers=bearer(rat))).status_code == 401
    assert (await client.delete(path_of(info), headers=bearer(rat))).status_code == 401
    assert (await client.get("/restaurent", headers=bearer(access))).status_code == 401
    refused = await client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers=credentials
    )
    assert refused.status_code == 401


async def test_a_registered_client_can_start_a_sign_in(
    client: httpx.AsyncClient, app_svc: Services
) -> None:
    info = await registered(client, app_svc, {**WEB, "token_endpoint_auth_method": "none"})
    query = urlencode(
        {
            "response_type": "code",
            "client_id": info["client_id"],
            "redirect_uri": "https://app.example/cb",
            "scope": "openid",
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256",
        }
    )
    response = await client.get(f"/oauth/authorize?{query}")
    assert response.status_code == 303, response.text
    assert "/signin/" in response.headers["location"]


async def test_every_change_is_audited(client: httpx.AsyncClient, app_svc: Services) -> None:
    created = await app_svc.initial_tokens.create(max_clients=2, expires_in=3600)
    response = await register(client, created.value, WEB)
    info = response.json()
    rat, path, client_id = info["registration_access_token"], path_of(info), info["client_id"]
    await client.put(path, json={**WEB, "client_id": client_id}, headers=bearer(rat))
    await client.delete(path, headers=bearer(rat))
    await app_svc.audit.flush()
    recorded = [(kind, data) for kind, data in await events(app_svc.storage)
                if data.get("client_id") == client_id]  # fmt: skip
    kinds = [kind for kind, _ in recorded]
    assert kinds == ["client_registered", "client_registration_updated", "client_deleted"]
    assert recorded[0][1]["token_id"] == created.token.token_id
    assert all(data["ip"] == "127.0.0.1" for _, data in recorded)
    everything = json.dumps(await events(app_svc.storage))
    assert info["client_secret"] not in everything
    assert rat not in everything
    assert created.value not in everything


@pytest.mark.settings(rate_limit_registrations_per_address="3/minute")
async def test_rate_limited_per_address(client: httpx.AsyncClient, app_svc: Services) -> None:
    token = await initial_token(app_svc)
    statuses = [(await register(client, None, WEB)).status_code for _ in range(2)]
    assert statuses == [401, 401]  # refused requests count too
    assert (await register(client, token, WEB)).status_code == 201
    limited = await register(client, token, WEB)
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    # Management requests share the address's budget.
    assert (await client.get("/oauth/register/x", headers=bearer("y"))).status_code == 429


@pytest.mark.settings(registration="open")
async def test_open_registration_needs_no_token(client: httpx.AsyncClient) -> None:
    response = await client.post("/oauth/register", json=WEB)
    assert response.status_code == 201, response.text
    # The policy still holds.
    refused = await client.post("/oauth/register", json={**WEB, "scope": "restaurants:write"})
    assert refused.json()["error"] == "invalid_client_metadata"
