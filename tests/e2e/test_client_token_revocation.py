"""Tokens of a deleted client, ``clients revoke-tokens``, refusals of opaque tokens with a wrong
secret, and the ``token_revoked`` audit event for opaque tokens — through the ASGI app, on
SQLite and PostgreSQL.

Issue 8 finding 6: a deleted client's JWTs and opaque tokens went on opening the API and
introspecting as active for up to their lifetime. Issue 14 item 1: a valid selector with a
wrong, truncated or borrowed secret must be refused exactly like an unknown token.
"""

from __future__ import annotations

import json

import httpx
import pytest

from oauth_server.clock import FrozenClock
from oauth_server.crypto import new_split_token
from oauth_server.oauth.clients import ClientRegistry
from oauth_server.web.api import FastRouter
from tests.helpers import (
    app_services,
    basic,
    bearer,
    eventually,
    opaque_parts,
    secret_of,
    with_secret,
)

ISSUER = "http://localhost:8889"
FORMATS = ["jwt", "opaque"]


async def register(app: FastRouter, client_id: str, **options: object) -> str:
    created = await app_services(app).registry.create(client_id=client_id, **options)  # type: ignore[arg-type]
    assert created.secret is not None
    return basic(client_id, created.secret)


async def token_for(http: httpx.AsyncClient, auth: str) -> str:
    response = await http.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers={"Authorization": auth}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def introspect(http: httpx.AsyncClient, token: str, auth: str) -> dict[str, object]:
    response = await http.post(
        "/oauth/introspect", data={"token": token}, headers={"Authorization": auth}
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def api_status(http: httpx.AsyncClient, token: str) -> int:
    return (await http.get("/restaurent", headers=bearer(token))).status_code


async def works(http: httpx.AsyncClient, token: str, resource_server: str) -> bool:
    active = (await introspect(http, token, resource_server))["active"]
    status = await api_status(http, token)
    assert (status == 200) == active, (status, active)  # the API and introspection agree
    return bool(active)


@pytest.mark.parametrize("token_format", FORMATS)
async def test_a_deleted_clients_tokens_stop_working(
    app: FastRouter, client: httpx.AsyncClient, clock: FrozenClock, token_format: str
) -> None:
    rs = await register(app, "rs", scopes=["x"], introspect=[ISSUER])
    auth = await register(app, "gone", scopes=["restaurent"], token_format=token_format)
    tokens = [await token_for(client, auth)]
    clock.advance(10)
    tokens.append(await token_for(client, auth))
    for token in tokens:  # both validated, so both cached
        assert await works(client, token, rs)
    assert await app_services(app).registry.delete("gone")
    for token in tokens:  # at once in this process
        assert not await works(client, token, rs)
        assert (await introspect(client, token, rs)) == {"active": False}
    # A client of that id registered again later gets tokens that work; the old ones stay void.
    clock.advance(1)
    auth = await register(app, "gone", scopes=["restaurent"], token_format=token_format)
    assert await works(client, await token_for(client, auth), rs)
    assert not await works(client, tokens[0], rs)


@pytest.mark.parametrize("token_format", FORMATS)
@pytest.mark.parametrize("action", ["delete", "revoke_tokens"])
async def test_another_process_deleting_or_revoking_reaches_this_one_through_the_feed(
    app: FastRouter, client: httpx.AsyncClient, token_format: str, action: str
) -> None:
    """The CLI's registry: no cache of this process is told, only the database and its feed."""
    rs = await register(app, "rs", scopes=["x"], introspect=[ISSUER])
    auth = await register(app, "svc", scopes=["restaurent"], token_format=token_format)
    token = await token_for(client, auth)
    assert await works(client, token, rs)
    built = app_services(app)
    elsewhere = ClientRegistry(built.storage, clock=built.clock)
    assert await getattr(elsewhere, action)("svc")

    async def refused() -> bool:
        return not await works(client, token, rs)

    await eventually(refused, within=5)


@pytest.mark.parametrize("token_format", FORMATS)
async def test_revoke_tokens_voids_every_token_issued_so_far_and_no_later_one(
    app: FastRouter, client: httpx.AsyncClient, clock: FrozenClock, token_format: str
) -> None:
    rs = await register(app, "rs", scopes=["x"], introspect=[ISSUER])
    auth = await register(app, "svc", scopes=["restaurent"], token_format=token_format)
    other = await register(app, "other", scopes=["restaurent"], token_format=token_format)
    old = await token_for(client, auth)
    clock.advance(5)
    same_second = await token_for(client, auth)
    bystander = await token_for(client, other)
    built = app_services(app)
    assert await built.registry.revoke_tokens("svc")
    assert not await built.registry.revoke_tokens("nobody")
    for token in (old, same_second):
        assert not await works(client, token, rs)
    assert await works(client, bystander, rs)
    clock.advance(1)
    assert await works(client, await token_for(client, auth), rs)  # the client goes on
    await built.audit.flush()
    rows = await built.storage.audit.scan(after=None, limit=1000)
    assert [json.loads(r.data) for r in rows if r.kind == "client_tokens_revoked"] == [
        {"client_id": "svc"}
    ]


@pytest.mark.parametrize("state", ["live", "revoked", "expired"])
async def test_a_wrong_opaque_secret_is_refused_exactly_like_an_unknown_token(
    app: FastRouter, client: httpx.AsyncClient, clock: FrozenClock, state: str
) -> None:
    """Issue 14 item 1, through the restaurants API and introspection: same status, same
    body, same challenge as an unknown token — no "revoked" or "expired" hint."""
    auth = await register(app, "opq", scopes=["restaurent"], token_format="opaque")
    token = await token_for(client, auth)
    other = await token_for(client, auth)
    assert await api_status(client, token) == 200  # cached now
    if state == "revoked":
        revoked = await client.post(
            "/oauth/revoke", data={"token": token}, headers={"Authorization": auth}
        )
        assert revoked.status_code == 200
    elif state == "expired":
        clock.advance(3600)

    async def answers(
        value: str,
    ) -> tuple[int, bytes, str | None, int, bytes, str | None, int, bytes]:
        api = await client.get("/restaurent", headers=bearer(value))
        rest = await client.get("/api/restaurants", headers=bearer(value))
        introspection = await client.post(
            "/oauth/introspect", data={"token": value}, headers={"Authorization": auth}
        )
        return (
            api.status_code,
            api.content,
            api.headers.get("www-authenticate"),
            rest.status_code,
            rest.content,
            rest.headers.get("www-authenticate"),
            introspection.status_code,
            introspection.content,
        )

    codec = app_services(app).codec
    unknown = await answers(codec.mint("access_token", clock.now()).value)
    assert unknown[0] == unknown[3] == 401
    assert json.loads(unknown[7]) == {"active": False}
    assert await answers(new_split_token(clock.now()).value) == unknown  # the old format's
    forged = {
        # With the checksum recomputed (only the server can): the secret's comparison refuses.
        "wrong secret": with_secret(token, bytes(32), codec),
        "another token's secret": with_secret(token, secret_of(other), codec),
        # As anyone else can make them: the checksum refuses, before any lookup.
        "wrong secret, old checksum": with_secret(token, bytes(32)),
        "truncated": token[:-2],
        "selector only": token[:16],
    }
    for name, value in forged.items():
        assert await answers(value) == unknown, name
    assert b"revoked" not in unknown[1]
    assert b"expired" not in unknown[1]


async def test_opaque_revocation_is_audited(app: FastRouter, client: httpx.AsyncClient) -> None:
    """Issue 13 item 3: the ``token_revoked`` event for an opaque token, named by its selector."""
    auth = await register(app, "opq", scopes=["restaurent"], token_format="opaque")
    token = await token_for(client, auth)
    for _ in range(2):  # the second revocation changes nothing and records nothing
        response = await client.post(
            "/oauth/revoke", data={"token": token}, headers={"Authorization": auth}
        )
        assert response.status_code == 200
    built = app_services(app)
    await built.audit.flush()
    rows = await built.storage.audit.scan(after=None, limit=1000)
    selector = opaque_parts(token)[1][:12].hex()
    assert [json.loads(r.data) for r in rows if r.kind == "token_revoked"] == [
        {"client_id": "opq", "token_id": selector, "token_type": "opaque", "ip": "127.0.0.1"}
    ]
    assert all(token not in r.data for r in rows)
