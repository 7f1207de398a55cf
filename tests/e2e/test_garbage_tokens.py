"""Issue 11 item 3, "garbage costs nothing", through the ASGI app on SQLite and PostgreSQL: an
opaque access token, refresh token or authorization code the server never minted — random,
truncated, a bit flipped, another key's, another kind's — is refused without one SQL statement on
the token tables, and exactly like a well-formed unknown token (same status, body and challenge:
issue 14 item 1 still holds). The well-formed unknown token, minted with the server's own key and
never stored, is the reference: it does reach storage, which shows the count can see a read."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from oauth_server.clock import FrozenClock
from oauth_server.crypto import new_split_token
from oauth_server.oauth.tokens.format import PREFIXES, TokenCodec
from oauth_server.services import Services
from oauth_server.web.api import FastRouter
from tests.helpers import FORM, app_services, basic, bearer, with_secret
from tests.signin import PUBLIC_ID, REDIRECT, add_world, new_verifier

pytestmark = pytest.mark.settings(rate_limits=False)  # many refusals from one address

_TOKEN_TABLES = re.compile(r"\b(opaque_tokens|refresh_tokens|authorization_codes)\b")


class TokenTableStatements:
    """Counts the SQL statements of the app's engine that read or change a token table (the
    purger's DELETEs aside: they run on their own schedule)."""

    def __init__(self, services: Services) -> None:
        self.count = 0
        self._engine = services.storage.engine.sync_engine  # type: ignore[attr-defined]
        event.listen(self._engine, "before_cursor_execute", self._seen)

    def _seen(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if _TOKEN_TABLES.search(statement) and not statement.lstrip().upper().startswith("DELETE"):
            self.count += 1

    def close(self) -> None:
        event.remove(self._engine, "before_cursor_execute", self._seen)


@pytest.fixture
def statements(app: FastRouter) -> Iterator[TokenTableStatements]:
    counter = TokenTableStatements(app_services(app))
    yield counter
    counter.close()


def garbage(known: str, kind: str, now: float) -> dict[str, str]:
    """Values of the shape of a token of ``kind`` (prefix ``pos_…_``) that the server never
    minted, made from a real token ``known`` where that helps the forgery."""
    prefix = PREFIXES[kind]  # type: ignore[index]
    other_kind = next(p for p in PREFIXES.values() if p != prefix)
    another_key = TokenCodec(
        b"some-other-servers-secret-key-0123456789",
        clock=FrozenClock(now),
        legacy_max_age=dict.fromkeys(PREFIXES, 3600),
        accept_legacy=True,
    )
    return {
        "random": prefix + secrets.token_urlsafe(50)[:67],
        "truncated": known[:-3],
        "selector only": known[: len(prefix) + 16],
        "extended": known + "AAAA",
        "wrong secret, its checksum kept": with_secret(known, bytes(32)),
        "bit flipped in the checksum": known[:-2] + ("A" if known[-2] != "A" else "B") + known[-1],
        "another server's token": another_key.mint(kind, now).value,  # type: ignore[arg-type]
        "another kind's prefix": other_kind + known[len(prefix) :],
        "old format, long expired": new_split_token(now - 400 * 86_400).value,
        "old format, from the future": new_split_token(now + 86_400).value,
        "not a token at all": "garbage",
    }


async def opaque_client(app: FastRouter) -> str:
    created = await app_services(app).registry.create(
        client_id="opq",
        scopes=["restaurent"],
        token_format="opaque",
        introspect=[app_services(app).settings.resource_id],
    )
    assert created.secret is not None
    return basic("opq", created.secret)


async def access_answers(http: httpx.AsyncClient, value: str, auth: str) -> tuple[object, ...]:
    api = await http.get("/restaurent", headers=bearer(value))
    rest = await http.get("/api/restaurants", headers=bearer(value))
    introspection = await http.post(
        "/oauth/introspect", data={"token": value}, headers={"Authorization": auth}
    )
    revocation = await http.post(
        "/oauth/revoke", data={"token": value}, headers={"Authorization": auth}
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
        revocation.status_code,
        revocation.content,
    )


async def test_garbage_access_tokens_never_reach_storage_and_answer_like_unknown_ones(
    app: FastRouter,
    client: httpx.AsyncClient,
    clock: FrozenClock,
    statements: TokenTableStatements,
) -> None:
    """Introspection, revocation and the restaurants API (seed route and REST)."""
    auth = await opaque_client(app)
    issued = await client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers={"Authorization": auth}
    )
    known = issued.json()["access_token"]
    assert known.startswith("pos_at_")
    codec = app_services(app).codec

    before = statements.count
    unknown = await access_answers(client, codec.mint("access_token", clock.now()).value, auth)
    assert statements.count > before  # well-formed and ours: looked up
    assert unknown[0] == unknown[3] == 401
    assert unknown[7] == b'{"active":false}'
    assert unknown[8] == 200
    # Ours, but with a wrong secret: looked up, and refused by the secret's comparison.
    assert await access_answers(client, with_secret(known, bytes(32), codec), auth) == unknown

    for name, value in garbage(known, "access_token", clock.now()).items():
        before = statements.count
        assert await access_answers(client, value, auth) == unknown, name
        assert statements.count == before, name

    assert (await client.get("/restaurent", headers=bearer(known))).status_code == 200


async def token_answer(http: httpx.AsyncClient, form: dict[str, str]) -> tuple[int, bytes]:
    response = await http.post("/oauth/token", data=form, headers=FORM)
    return response.status_code, response.content


async def test_garbage_refresh_tokens_and_codes_never_reach_storage(
    app: FastRouter,
    client: httpx.AsyncClient,
    clock: FrozenClock,
    statements: TokenTableStatements,
) -> None:
    """The token endpoint: ``invalid_grant`` with the unknown token's very body."""
    services = app_services(app)
    await add_world(services.storage)
    codec = services.codec
    now = clock.now()
    verifier = new_verifier()

    def refresh(value: str) -> dict[str, str]:
        return {"grant_type": "refresh_token", "refresh_token": value, "client_id": PUBLIC_ID}

    def exchange(value: str) -> dict[str, str]:
        return {
            "grant_type": "authorization_code",
            "code": value,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
            "client_id": PUBLIC_ID,
        }

    for kind, form in (("refresh_token", refresh), ("authorization_code", exchange)):
        ours = codec.mint(kind, now).value  # type: ignore[arg-type]
        before = statements.count
        unknown = await token_answer(client, form(ours))
        assert statements.count > before, kind
        assert unknown[0] == 400
        assert b'"invalid_grant"' in unknown[1]
        for name, value in garbage(ours, kind, now).items():
            before = statements.count
            assert await token_answer(client, form(value)) == unknown, (kind, name)
            assert statements.count == before, (kind, name)
