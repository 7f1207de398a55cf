"""The authorization endpoint's request validation decided case by case: each refusal with its
exact description (on the error page or in the redirect's ``error_description``), the
parameter bounds one either side, PKCE for every kind of client, and what reaches the sign-in
when parameters are left out (kills the mutants of ``oauth/endpoints/authorize.py``; see
``make mutate``)."""

from __future__ import annotations

import dataclasses
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from oauth_server.errors import InvalidScope, UntrustedRedirect
from oauth_server.oauth.clients import ClientDirectory
from oauth_server.oauth.endpoints.authorize import AuthorizationEndpoint
from oauth_server.oauth.http import OAuthRequest, OAuthResponse
from oauth_server.oauth.interaction import AuthorizeRequest
from oauth_server.oauth.params import MAX_PARAM_LENGTH, MAX_PARAMS
from oauth_server.oauth.scopes import resolve_scope
from oauth_server.storage.models import Client
from tests.fakes import MemoryClients, make_client

ISSUER = "https://issuer.example"
RESOURCE = "https://api.example"
CB = "https://app.example/cb"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"  # RFC 7636 Appendix B
STARTED = OAuthResponse(299, b"started")


class SignIn:
    issuer = ISSUER

    def __init__(self) -> None:
        self.started: list[tuple[OAuthRequest, AuthorizeRequest, Client]] = []

    async def start(
        self, request: OAuthRequest, areq: AuthorizeRequest, client: Client
    ) -> OAuthResponse:
        self.started.append((request, areq, client))
        return STARTED


def client(client_id: str, **changes: object) -> Client:
    base = make_client(
        client_id,
        scopes=("openid", "profile"),
        default_scopes=("openid",),
        grant_types=frozenset({"authorization_code"}),
    )
    base = dataclasses.replace(
        base,
        redirect_uris=(CB, "https://app.example/other"),
        client_type="public",
        secret_hash=None,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


CLIENTS = [
    client("web"),
    client("machine", grant_types=frozenset({"client_credentials"})),
    client("relaxed", client_type="confidential", require_pkce=False),
    client("strict", client_type="confidential", require_pkce=True),
    # A public row with require_pkce off (check_client refuses one): PKCE is required anyway.
    client("odd-public", require_pkce=False),
]
GOOD = {
    "response_type": "code",
    "client_id": "web",
    "redirect_uri": CB,
    "state": "st",
    "code_challenge": CHALLENGE,
    "code_challenge_method": "S256",
}


def endpoint() -> tuple[AuthorizationEndpoint, SignIn]:
    signin = SignIn()
    found = AuthorizationEndpoint(
        clients=ClientDirectory(MemoryClients(*CLIENTS)),
        signin=signin,  # type: ignore[arg-type]
        default_resource=RESOURCE,
    )
    return found, signin


def get(pairs: list[tuple[str, str]]) -> OAuthRequest:
    return OAuthRequest(
        "GET", "/oauth/authorize", query=tuple(pairs), query_string=urlencode(pairs)
    )


def with_(**changes: str | None) -> list[tuple[str, str]]:
    params = {**GOOD, **changes}
    return [(k, v) for k, v in params.items() if v is not None]


async def page(request: OAuthRequest) -> str | None:
    found, signin = endpoint()
    with pytest.raises(UntrustedRedirect) as caught:
        await found.handle(request)
    assert signin.started == []
    return caught.value.description


async def redirected(pairs: list[tuple[str, str]]) -> dict[str, str]:
    found, signin = endpoint()
    response = await found.handle(get(pairs))
    assert response.status == 303
    assert signin.started == []
    location = response.headers["Location"]
    assert location.startswith(CB + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def started(pairs: list[tuple[str, str]]) -> AuthorizeRequest:
    found, signin = endpoint()
    assert await found.handle(get(pairs)) is STARTED
    return signin.started[0][1]


# --- never redirected ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pairs", "description"),
    [
        (with_(client_id=None), "the client_id parameter is missing or malformed"),
        (with_(client_id="caf\u00e9"), "the client_id parameter is missing or malformed"),
        (with_(client_id="nobody"), "unknown client"),
        ([*with_(), ("client_id", "web")], "parameter 'client_id' must not be repeated"),
        (with_(redirect_uri=None), "the redirect_uri parameter is required for this client"),
        (
            with_(redirect_uri="https://evil.example/cb"),
            "the redirect_uri is not registered for this client",
        ),
        (
            [(f"p{i}", "v") for i in range(MAX_PARAMS - len(GOOD) + 1)] + with_(),
            "too many parameters",
        ),
        (
            [*with_(), ("n" * 40, "v" * (MAX_PARAM_LENGTH + 1))],
            f"parameter {'n' * 32!r} is too long",
        ),
    ],
)
async def test_error_pages_say_why(pairs: list[tuple[str, str]], description: str) -> None:
    assert await page(get(pairs)) == description


async def test_a_client_without_redirect_uris_is_unknown() -> None:
    bare = dataclasses.replace(CLIENTS[0], client_id="bare", redirect_uris=())
    found = AuthorizationEndpoint(
        clients=ClientDirectory(MemoryClients(bare)),
        signin=SignIn(),  # type: ignore[arg-type]
        default_resource=RESOURCE,
    )
    with pytest.raises(UntrustedRedirect) as caught:
        await found.handle(get(with_(client_id="bare")))
    assert caught.value.description == "unknown client"


@pytest.mark.parametrize(
    ("content_type", "body", "description"),
    [
        ("application/json", b"{}", "the request body must be a form"),
        (
            "application/x-www-form-urlencoded",
            b"client_id=\xff",
            "the request body is not valid UTF-8",
        ),
    ],
)
async def test_post_bodies_that_are_not_forms(
    content_type: str, body: bytes, description: str
) -> None:
    request = OAuthRequest(
        "POST", "/oauth/authorize", headers={"content-type": content_type}, body=body
    )
    assert await page(request) == description


async def test_the_parameter_bounds_themselves_are_accepted() -> None:
    filler = [(f"p{i}", "v") for i in range(MAX_PARAMS - len(GOOD))]
    assert len(filler + with_()) == MAX_PARAMS
    assert (await started(filler + with_())).client_id == "web"
    longest = [*with_(), ("x", "v" * MAX_PARAM_LENGTH)]
    assert (await started(longest)).client_id == "web"


# --- redirected with error_description ----------------------------------------------------


@pytest.mark.parametrize(
    ("pairs", "error", "description"),
    [
        (with_(response_type=None), "invalid_request", "the response_type parameter is required"),
        (
            with_(response_type="token"),
            "unsupported_response_type",
            "only response_type=code is supported",
        ),
        (
            with_(response_mode="fragment"),
            "invalid_request",
            "response_mode must be query or form_post",
        ),
        (
            [*with_(), ("m" * 40, "a"), ("m" * 40, "b")],
            "invalid_request",
            f"parameter {'m' * 32!r} must not be repeated",
        ),
        (
            with_(client_id="machine"),
            "unauthorized_client",
            "this client may not use the authorization code grant",
        ),
        (
            with_(code_challenge=None),
            "invalid_request",
            "code_challenge_method without code_challenge",
        ),
        (
            with_(code_challenge=None, code_challenge_method=None),
            "invalid_request",
            "code_challenge is required (PKCE, RFC 7636)",
        ),
        (
            with_(client_id="strict", code_challenge=None, code_challenge_method=None),
            "invalid_request",
            "code_challenge is required (PKCE, RFC 7636)",
        ),
        (
            with_(client_id="odd-public", code_challenge=None, code_challenge_method=None),
            "invalid_request",
            "code_challenge is required (PKCE, RFC 7636)",
        ),
        (
            with_(code_challenge_method="plain"),
            "invalid_request",
            "code_challenge_method must be S256",
        ),
        (
            with_(code_challenge="a" * 42),
            "invalid_request",
            "code_challenge must be 43-128 characters of [A-Za-z0-9-._~]",
        ),
        (with_(prompt="select_account"), "invalid_request", "prompt may be none, login or consent"),
        (
            with_(prompt="none consent"),
            "invalid_request",
            "prompt=none cannot be combined with other values",
        ),
        (with_(max_age="-1"), "invalid_request", "max_age must be a non-negative integer"),
        (with_(max_age="1" * 11), "invalid_request", "max_age must be a non-negative integer"),
    ],
)
async def test_redirected_errors_say_why(
    pairs: list[tuple[str, str]], error: str, description: str
) -> None:
    query = await redirected(pairs)
    assert (query["error"], query["error_description"]) == (error, description)
    assert (query["state"], query["iss"]) == ("st", ISSUER)


async def test_a_scope_error_keeps_its_description() -> None:
    with pytest.raises(InvalidScope) as caught:
        resolve_scope("openid admin", allowed=CLIENTS[0].scopes, default=("openid",))
    query = await redirected(with_(scope="openid admin"))
    assert (query["error"], query["error_description"]) == (
        "invalid_scope",
        caught.value.description,
    )


async def test_state_is_echoed_only_when_sent_once() -> None:
    query = await redirected(with_(state=None, response_type="token"))
    assert "state" not in query
    query = await redirected([*with_(response_type="token"), ("state", "other")])
    assert query["error_description"] == "parameter 'state' must not be repeated"
    assert "state" not in query


# --- what reaches the sign-in -------------------------------------------------------------


async def test_what_is_left_out_arrives_empty() -> None:
    found, signin = endpoint()
    request = get(with_(client_id="relaxed", code_challenge=None, code_challenge_method=None))
    assert await found.handle(request) is STARTED
    (seen, areq, who) = signin.started[0]
    assert seen is request
    assert who == CLIENTS[2]
    assert areq == AuthorizeRequest(
        client_id="relaxed", redirect_uri=CB, scope=("openid",), state="st"
    )
    assert (areq.code_challenge_method, areq.nonce, areq.resource, areq.login_hint) == (
        "",
        "",
        "",
        "",
    )


async def test_prompt_none_alone_and_the_longest_max_age_and_login_hint() -> None:
    areq = await started(with_(prompt="none", max_age="9" * 10, login_hint="h" * 300))
    assert areq.prompt == ("none",)
    assert areq.max_age == 9_999_999_999
    assert areq.login_hint == "h" * 256
