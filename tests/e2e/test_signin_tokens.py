"""The authorization_code and refresh_token grants through the ASGI app, on SQLite and
PostgreSQL, with codes put into storage as the authorization endpoint will: the exchange, a
replayed code whose JWT the restaurants API and introspection then refuse, refresh-family
revocation, RFC 7009 for refresh tokens, 20-way races, the metadata, and what disabling a user
or changing its password (through the CLI) does to its tokens."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from click.testing import CliRunner

from oauth_server.cli import main
from oauth_server.web.api import FastRouter
from tests.helpers import FORM, basic, bearer, cli_env, eventually
from tests.signin import (
    CODE_SCOPE as SCOPE,
)
from tests.signin import (
    PUBLIC_ID,
    code_for,
    exchange_form,
    post_token,
    refresh,
    world,
)

FORMATS = ["jwt", "opaque"]


async def accepted(http: httpx.AsyncClient, token: str, rs: str) -> bool:
    """Whether the restaurants API and introspection accept the token (they must agree)."""
    response = await http.post("/oauth/introspect", data={"token": token}, headers={
        "Authorization": rs})  # fmt: skip
    active = bool(response.json()["active"])
    status = (await http.get("/restaurent", headers=bearer(token))).status_code
    assert (status == 200) == active, (status, active)
    return active


@pytest.mark.parametrize("token_format", FORMATS)
async def test_code_exchange_then_refresh(
    app: FastRouter, client: httpx.AsyncClient, token_format: str
) -> None:
    rs = await world(app, token_format)
    response = await post_token(client, exchange_form(await code_for(app)))
    assert response.status_code == 200, response.text
    body = response.json()
    assert response.headers["cache-control"] == "no-store"
    assert body["token_type"] == "Bearer"
    assert "id_token" not in body
    assert await accepted(client, body["access_token"], rs)
    # A refresh token is for its client's own use: introspection does not describe it.
    seen = await client.post("/oauth/introspect", data={"token": body["refresh_token"]}, headers={
        "Authorization": rs})  # fmt: skip
    assert seen.json() == {"active": False}
    refreshed = await refresh(client, body["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["refresh_token"] != body["refresh_token"]
    assert await accepted(client, refreshed.json()["access_token"], rs)


@pytest.mark.parametrize("token_format", FORMATS)
async def test_a_replayed_codes_tokens_are_refused_by_the_api_and_introspection(
    app: FastRouter, client: httpx.AsyncClient, token_format: str
) -> None:
    rs = await world(app, token_format)
    seeded = await code_for(app)
    first = await post_token(client, exchange_form(seeded))
    assert first.status_code == 200, first.text
    access = first.json()["access_token"]
    assert await accepted(client, access, rs)
    replay = await post_token(client, exchange_form(seeded))
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert not await accepted(client, access, rs)
    again = await refresh(client, first.json()["refresh_token"])
    assert again.json()["error"] == "invalid_grant"


async def test_an_invalid_replay_revokes_nothing(
    app: FastRouter, client: httpx.AsyncClient
) -> None:
    rs = await world(app)
    seeded = await code_for(app)
    first = await post_token(client, exchange_form(seeded))
    wrong = {**exchange_form(seeded), "code_verifier": "w" * 43}
    assert (await post_token(client, wrong)).json()["error"] == "invalid_grant"
    assert await accepted(client, first.json()["access_token"], rs)


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({"code_verifier": "short"}, 400, "invalid_request"),
        ({"redirect_uri": "http://127.0.0.1:9999/elsewhere"}, 400, "invalid_grant"),
        ({"client_id": "other-spa"}, 400, "invalid_grant"),
        ({"client_id": "nobody"}, 401, "invalid_client"),
        ({"code": "garbage"}, 400, "invalid_grant"),
    ],
)
async def test_bad_exchanges_are_rfc_shaped(
    app: FastRouter, client: httpx.AsyncClient, form: dict[str, str], status: int, error: str
) -> None:
    await world(app)
    response = await post_token(client, {**exchange_form(await code_for(app)), **form})
    assert (response.status_code, response.json()["error"]) == (status, error)


async def test_a_rotated_refresh_token_presented_again_revokes_the_family(
    app: FastRouter, client: httpx.AsyncClient
) -> None:
    rs = await world(app)
    first = (await post_token(client, exchange_form(await code_for(app)))).json()
    second = (await refresh(client, first["refresh_token"])).json()
    reuse = await refresh(client, first["refresh_token"])
    assert reuse.json()["error"] == "invalid_grant"
    assert not await accepted(client, first["access_token"], rs)
    assert not await accepted(client, second["access_token"], rs)
    assert (await refresh(client, second["refresh_token"])).json()["error"] == "invalid_grant"


async def test_a_confidential_client_authenticates_and_may_narrow_but_not_widen(
    app: FastRouter, client: httpx.AsyncClient
) -> None:
    await world(app)
    from tests.signin import CONFIDENTIAL_ID, CONFIDENTIAL_SECRET

    auth = {"Authorization": basic(CONFIDENTIAL_ID, CONFIDENTIAL_SECRET), **FORM}
    seeded = await code_for(app, client_id=CONFIDENTIAL_ID)
    form = exchange_form(seeded)
    del form["client_id"]
    body = (await client.post("/oauth/token", data=form, headers=auth)).json()
    narrow = await client.post("/oauth/token", headers=auth, data={
        "grant_type": "refresh_token", "refresh_token": body["refresh_token"],
        "scope": "restaurent"})  # fmt: skip
    assert narrow.status_code == 200, narrow.text
    assert "scope" not in narrow.json()  # RFC 6749 §5.1: sent only when it differs
    wide = await client.post("/oauth/token", headers=auth, data={
        "grant_type": "refresh_token", "refresh_token": narrow.json()["refresh_token"],
        "scope": "restaurent restaurants:write"})  # fmt: skip
    assert (wide.status_code, wide.json()["error"]) == (400, "invalid_scope")
    # A public client presenting the confidential client's token: refused, nothing revoked.
    stolen = await refresh(client, narrow.json()["refresh_token"])
    assert stolen.json()["error"] == "invalid_grant"
    again = {"grant_type": "refresh_token", "refresh_token": narrow.json()["refresh_token"]}
    full = await client.post("/oauth/token", headers=auth, data=again)
    assert full.status_code == 200, full.text
    assert set(full.json()["scope"].split()) == set(SCOPE.split())  # the family's full scope


async def test_twenty_parallel_redemptions_of_one_code_give_one_success(
    app: FastRouter, client: httpx.AsyncClient
) -> None:
    rs = await world(app)
    form = exchange_form(await code_for(app))
    responses = await asyncio.gather(*(post_token(client, form) for _ in range(20)))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [400] * 19
    assert {r.json()["error"] for r in responses if r.status_code == 400} == {"invalid_grant"}
    # The others were valid replays: what the one success received is revoked.
    (winner,) = (r.json() for r in responses if r.status_code == 200)
    assert not await accepted(client, winner["access_token"], rs)
    assert (await refresh(client, winner["refresh_token"])).json()["error"] == "invalid_grant"


async def test_twenty_parallel_refreshes_of_one_token_give_one_success(
    app: FastRouter, client: httpx.AsyncClient
) -> None:
    await world(app)
    first = (await post_token(client, exchange_form(await code_for(app)))).json()
    responses = await asyncio.gather(*(refresh(client, first["refresh_token"]) for _ in range(20)))
    assert sorted(response.status_code for response in responses) == [200] + [400] * 19


async def test_revoking_a_refresh_token_with_none_revokes_its_family(
    app: FastRouter, client: httpx.AsyncClient
) -> None:
    rs = await world(app)
    first = (await post_token(client, exchange_form(await code_for(app)))).json()
    # Another client cannot revoke it (the answer is 200 all the same, RFC 7009 §2.2).
    other = await client.post("/oauth/revoke", headers=FORM, data={
        "token": first["refresh_token"], "client_id": "other-spa"})  # fmt: skip
    assert other.status_code == 200
    assert (await refresh(client, first["refresh_token"])).status_code == 200
    second = (await post_token(client, exchange_form(await code_for(app)))).json()
    revoked = await client.post("/oauth/revoke", headers=FORM, data={
        "token": second["refresh_token"], "token_type_hint": "refresh_token",
        "client_id": PUBLIC_ID})  # fmt: skip
    assert revoked.status_code == 200
    assert (await refresh(client, second["refresh_token"])).json()["error"] == "invalid_grant"
    assert not await accepted(client, second["access_token"], rs)


async def test_the_metadata_advertises_the_user_grants_and_none(client: httpx.AsyncClient) -> None:
    metadata = (await client.get("/.well-known/oauth-authorization-server")).json()
    assert {"authorization_code", "refresh_token"} <= set(metadata["grant_types_supported"])
    assert "none" in metadata["token_endpoint_auth_methods_supported"]
    assert "none" in metadata["revocation_endpoint_auth_methods_supported"]
    assert "none" not in metadata["introspection_endpoint_auth_methods_supported"]


@pytest.mark.parametrize(
    ("command", "stdin"),
    [(("users", "disable", "alice"), None), (("users", "set-password", "alice",
     "--password-stdin"), "a new password that is long enough\n")],
)  # fmt: skip
async def test_disabling_a_user_or_a_new_password_revokes_its_refresh_tokens(
    app: FastRouter,
    client: httpx.AsyncClient,
    database_url: str,
    command: tuple[str, ...],
    stdin: str | None,
) -> None:
    rs = await world(app)
    first = (await post_token(client, exchange_form(await code_for(app)))).json()
    env = {
        **cli_env(database_url),
        "OAUTH_SERVER_PASSWORD_HASH_TIME_COST": "1",
        "OAUTH_SERVER_PASSWORD_HASH_MEMORY_COST": "8",
    }
    result = await asyncio.to_thread(CliRunner().invoke, main, list(command), input=stdin, env=env)
    assert result.exit_code == 0, result.output
    assert (await refresh(client, first["refresh_token"])).json()["error"] == "invalid_grant"

    async def refused() -> bool:
        return not await accepted(client, first["access_token"], rs)

    await eventually(refused)  # another process revoked it: the change feed brings it here
