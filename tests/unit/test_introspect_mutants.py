"""Introspection (RFC 7662) decided case by case: who may see which token, and exactly what the
answer says (kills the mutants of ``oauth/endpoints/introspect.py``; see ``make mutate``)."""

from __future__ import annotations

import base64
from dataclasses import replace
from urllib.parse import urlencode

import orjson
import pytest

from oauth_server.errors import InvalidClient, InvalidRequest, InvalidToken
from oauth_server.oauth.client_auth import ClientAuthenticator
from oauth_server.oauth.clients import ClientDirectory
from oauth_server.oauth.endpoints.introspect import IntrospectionEndpoint
from oauth_server.oauth.http import OAuthRequest, OAuthResponse
from oauth_server.oauth.tokens.verify.claims import AccessClaims
from tests.fakes import MemoryClients, make_client

DEFAULT = "https://api.example"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class Limiter:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[str, ...]]] = []

    async def before_authentication(self, client_id: str, address: str) -> None:
        self.calls.append(("before", (client_id, address)))

    async def authentication_failed(self, client_id: str, address: str) -> None:
        self.calls.append(("failed", (client_id, address)))

    async def introspection_requested(self, client_id: str) -> None:
        self.calls.append(("introspection", (client_id,)))


class Tokens:
    """A verifier that knows a few tokens by value."""

    def __init__(self, **tokens: AccessClaims) -> None:
        self.tokens = tokens
        self.seen: list[str] = []

    async def verify(self, token: str) -> AccessClaims:
        self.seen.append(token)
        if token not in self.tokens:
            raise InvalidToken("the access token is not valid")
        return self.tokens[token]


def claims(client_id: str = "app", **changes: object) -> AccessClaims:
    fields: dict[str, object] = {
        "client_id": client_id,
        "subject": f"{client_id}-sub",
        "scope": frozenset({"a", "b"}),
        "issued_at": 100,
        "expires_at": 200,
        "audience": (DEFAULT,),
        "issuer": "https://as.example",
        "scope_text": "b a",
        "token_format": "jwt",
        **changes,
    }
    return AccessClaims(**fields)  # type: ignore[arg-type]


def endpoint(verifier: Tokens, limiter: Limiter | None = None) -> IntrospectionEndpoint:
    clients = MemoryClients(
        make_client("app", "s1"),
        make_client("rs", "s2"),
        make_client("other-rs", "s3"),
        make_client("requester", "s4"),
    )
    # Introspection of other clients' tokens is a right (the client's `introspect` audiences);
    # being allowed to *request* an audience (`resources`) grants nothing here.
    clients.rows["rs"] = replace(clients.rows["rs"], introspect=(DEFAULT,))
    clients.rows["other-rs"] = replace(
        clients.rows["other-rs"], introspect=("https://other.example", "https://third.example")
    )
    clients.rows["requester"] = replace(
        clients.rows["requester"], resources=(DEFAULT, "https://other.example")
    )
    return IntrospectionEndpoint(
        authenticator=ClientAuthenticator(ClientDirectory(clients), limiter=limiter),  # type: ignore[arg-type]
        verifier=verifier,
        limiter=limiter,  # type: ignore[arg-type]
    )


def request(client_id: str, secret: str, **params: str) -> OAuthRequest:
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return OAuthRequest(
        "POST",
        "/oauth/introspect",
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "authorization": f"Basic {basic}",
        },
        body=urlencode(params).encode(),
        client_ip="192.0.2.1",
    )


def body(response: OAuthResponse) -> dict[str, object]:
    assert response.status == 200
    assert response.headers == {"Content-Type": "application/json", **NO_STORE}
    data: dict[str, object] = orjson.loads(response.body)
    return data


async def test_the_owner_sees_every_member() -> None:
    limiter = Limiter()
    verifier = Tokens(t=claims(jti="j-1", not_before=90))
    response = await endpoint(verifier, limiter).handle(request("app", "s1", token="t"))
    assert body(response) == {
        "active": True,
        "scope": "b a",
        "client_id": "app",
        "token_type": "Bearer",
        "exp": 200,
        "iat": 100,
        "sub": "app-sub",
        "aud": DEFAULT,
        "iss": "https://as.example",
        "nbf": 90,
        "jti": "j-1",
    }
    assert verifier.seen == ["t"]
    assert limiter.calls == [
        ("before", ("app", "192.0.2.1")),
        ("introspection", ("app",)),
    ]


async def test_optional_members_are_left_out_and_many_audiences_are_a_list() -> None:
    token = claims(audience=(DEFAULT, "https://b.example"))
    data = body(await endpoint(Tokens(t=token)).handle(request("app", "s1", token="t")))
    assert "nbf" not in data
    assert "jti" not in data
    assert data["aud"] == [DEFAULT, "https://b.example"]
    none = claims(audience=())
    data = body(await endpoint(Tokens(t=none)).handle(request("app", "s1", token="t")))
    assert data["aud"] == []


@pytest.mark.parametrize(
    ("caller", "secret", "token", "active"),
    [
        ("app", "s1", claims("app", audience=("https://elsewhere",)), True),  # its own token
        ("rs", "s2", claims("app"), True),  # a token for the audience it may introspect
        ("rs", "s2", claims("app", audience=("https://x", DEFAULT)), True),
        ("rs", "s2", claims("app", audience=("https://other.example",)), False),
        ("other-rs", "s3", claims("app", audience=("https://other.example",)), True),
        ("other-rs", "s3", claims("app", audience=("https://third.example",)), True),
        ("other-rs", "s3", claims("app"), False),  # not its audience, not its token
        ("other-rs", "s3", claims("app", audience=()), False),
        # No right to introspect: the server's own API's tokens stay hidden (there is no
        # default audience any more), and requestable resources grant nothing.
        ("requester", "s4", claims("app"), False),
        ("requester", "s4", claims("app", audience=("https://other.example",)), False),
        ("app", "s1", claims("rs"), False),
    ],
)
async def test_who_may_see_a_token(
    caller: str, secret: str, token: AccessClaims, active: bool
) -> None:
    data = body(await endpoint(Tokens(t=token)).handle(request(caller, secret, token="t")))
    assert data["active"] is active
    if not active:
        assert data == {"active": False}


async def test_an_unknown_token_is_inactive() -> None:
    assert body(await endpoint(Tokens()).handle(request("app", "s1", token="nope"))) == {
        "active": False
    }


async def test_the_token_parameter_is_required() -> None:
    verifier = Tokens(t=claims())
    with pytest.raises(InvalidRequest) as caught:
        await endpoint(verifier).handle(request("app", "s1", TOKEN="t"))
    assert caught.value.description == "the token parameter is required"
    assert verifier.seen == []


async def test_the_caller_must_authenticate() -> None:
    limiter = Limiter()
    verifier = Tokens(t=claims())
    with pytest.raises(InvalidClient):
        await endpoint(verifier, limiter).handle(request("app", "wrong", token="t"))
    assert verifier.seen == []
    assert ("introspection", ("app",)) not in limiter.calls
