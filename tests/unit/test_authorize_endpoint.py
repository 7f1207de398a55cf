"""The authorization endpoint core, driven with OAuthRequest objects — no HTTP, no database.

Table-driven: every bad request, and where its error goes — an HTML page (the client or the
redirect URI cannot be trusted: RFC 6749 §4.1.2.1 forbids redirecting) or a redirect carrying
``error``, ``state`` and ``iss`` (RFC 9207)."""

from __future__ import annotations

import dataclasses
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from oauth_server.errors import UntrustedRedirect
from oauth_server.oauth.clients import ClientDirectory
from oauth_server.oauth.endpoints.authorize import AuthorizationEndpoint
from oauth_server.oauth.http import OAuthRequest, OAuthResponse
from oauth_server.oauth.interaction import AuthorizeRequest
from oauth_server.storage.models import Client
from tests.fakes import MemoryClients, make_client

pytestmark = pytest.mark.asyncio

ISSUER = "https://issuer.example"
RESOURCE = "https://api.example"
CB = "https://app.example/cb"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"  # RFC 7636 Appendix B
STARTED = OAuthResponse(299, b"started")


class FakeSignIn:
    issuer = ISSUER

    def __init__(self) -> None:
        self.started: list[AuthorizeRequest] = []

    async def start(
        self, request: OAuthRequest, areq: AuthorizeRequest, client: Client
    ) -> OAuthResponse:
        self.started.append(areq)
        return STARTED


def _client(**changes: object) -> Client:
    base = make_client(
        "web",
        scopes=("openid", "profile", "restaurants:read"),
        default_scopes=("openid",),
        grant_types=frozenset({"authorization_code", "refresh_token"}),
    )
    base = dataclasses.replace(
        base,
        redirect_uris=(CB, "http://127.0.0.1/native"),
        client_type="public",
        secret_hash=None,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


CLIENTS = [
    _client(),
    _client(client_id="one-uri", redirect_uris=(CB,)),
    _client(client_id="no-uris", redirect_uris=()),
    _client(client_id="machine", grant_types=frozenset({"client_credentials"})),
    _client(client_id="relaxed", client_type="confidential", require_pkce=False),
]


def _endpoint() -> tuple[AuthorizationEndpoint, FakeSignIn]:
    signin = FakeSignIn()
    endpoint = AuthorizationEndpoint(
        clients=ClientDirectory(MemoryClients(*CLIENTS)),
        signin=signin,  # type: ignore[arg-type]
        default_resource=RESOURCE,
    )
    return endpoint, signin


GOOD = {
    "response_type": "code",
    "client_id": "web",
    "redirect_uri": CB,
    "scope": "openid profile",
    "state": "s t&=ate",
    "code_challenge": CHALLENGE,
    "code_challenge_method": "S256",
}


def _get(pairs: list[tuple[str, str]]) -> OAuthRequest:
    query = urlencode(pairs)
    return OAuthRequest("GET", "/oauth/authorize", query=tuple(pairs), query_string=query)


def _with(**changes: str | None) -> list[tuple[str, str]]:
    params = {**GOOD, **changes}
    return [(k, v) for k, v in params.items() if v is not None]


async def _run(pairs: list[tuple[str, str]]) -> OAuthResponse:
    endpoint, _ = _endpoint()
    return await endpoint.handle(_get(pairs))


# --- Never redirected: an error page -------------------------------------------------------

PAGE_CASES = {
    "missing client_id": _with(client_id=None),
    "unknown client_id": _with(client_id="nobody"),
    "client without redirect URIs": _with(client_id="no-uris"),
    "client_id repeated": [*_with(), ("client_id", "web")],
    "redirect_uri missing with two registered": _with(redirect_uri=None),
    "redirect_uri unregistered": _with(redirect_uri="https://evil.example/cb"),
    "redirect_uri differs in case": _with(redirect_uri="https://APP.example/cb"),
    "redirect_uri with a suffix": _with(redirect_uri=CB + "/../evil"),
    "redirect_uri with an extra query": _with(redirect_uri=CB + "?next=https://evil.example"),
    "redirect_uri with a fragment": _with(redirect_uri=CB + "#x"),
    "redirect_uri prefix-matching host": _with(redirect_uri="https://app.example.evil/cb"),
    "redirect_uri userinfo trick": _with(redirect_uri="https://app.example@evil.example/cb"),
    "loopback on another path": _with(redirect_uri="http://127.0.0.1:5000/other"),
    "loopback host spoof": _with(redirect_uri="http://127.0.0.1.evil.example/native"),
    "redirect_uri repeated": [*_with(), ("redirect_uri", CB)],
}


@pytest.mark.parametrize("pairs", PAGE_CASES.values(), ids=PAGE_CASES.keys())
async def test_untrusted_client_or_redirect_uri_is_never_redirected(
    pairs: list[tuple[str, str]],
) -> None:
    endpoint, signin = _endpoint()
    with pytest.raises(UntrustedRedirect):
        await endpoint.handle(_get(pairs))
    assert signin.started == []


# --- Redirected with the error, state and iss ----------------------------------------------

REDIRECT_CASES = {
    "response_type missing": (_with(response_type=None), "invalid_request"),
    "response_type token": (_with(response_type="token"), "unsupported_response_type"),
    "response_type code id_token": (
        _with(response_type="code id_token"),
        "unsupported_response_type",
    ),
    "response_mode fragment": (_with(response_mode="fragment"), "invalid_request"),
    "scope repeated": ([*_with(), ("scope", "openid")], "invalid_request"),
    "code_challenge repeated": ([*_with(), ("code_challenge", CHALLENGE)], "invalid_request"),
    "client may not use the code grant": (_with(client_id="machine"), "unauthorized_client"),
    "scope beyond the client's": (_with(scope="openid restaurants:write"), "invalid_scope"),
    "scope malformed": (_with(scope='openid "x"'), "invalid_scope"),
    "pkce missing for a public client": (
        _with(code_challenge=None, code_challenge_method=None),
        "invalid_request",
    ),
    "pkce method plain": (_with(code_challenge_method="plain"), "invalid_request"),
    "pkce method missing (defaults to plain)": (
        _with(code_challenge_method=None),
        "invalid_request",
    ),
    "pkce method unknown": (_with(code_challenge_method="S512"), "invalid_request"),
    "pkce method without challenge": (_with(code_challenge=None), "invalid_request"),
    "challenge too short (42)": (_with(code_challenge="a" * 42), "invalid_request"),
    "challenge too long (129)": (_with(code_challenge="a" * 129), "invalid_request"),
    "challenge with a bad character": (_with(code_challenge="a" * 42 + "+"), "invalid_request"),
    "challenge with padding": (_with(code_challenge=CHALLENGE + "="), "invalid_request"),
    "resource not allowed": (_with(resource="https://other.example"), "invalid_target"),
    "resource relative": (_with(resource="/api"), "invalid_target"),
    "resource with fragment": (_with(resource=RESOURCE + "#f"), "invalid_target"),
    "resource repeated": ([*_with(resource=RESOURCE), ("resource", RESOURCE)], "invalid_request"),
    "prompt unknown": (_with(prompt="select_account"), "invalid_request"),
    "prompt none with login": (_with(prompt="none login"), "invalid_request"),
    "max_age negative": (_with(max_age="-1"), "invalid_request"),
    "max_age not a number": (_with(max_age="soon"), "invalid_request"),
}


@pytest.mark.parametrize(("pairs", "error"), REDIRECT_CASES.values(), ids=REDIRECT_CASES.keys())
async def test_bad_request_is_redirected_with_error_state_and_iss(
    pairs: list[tuple[str, str]], error: str
) -> None:
    response = await _run(pairs)
    assert response.status == 303
    location = response.headers["Location"]
    assert location.startswith(CB + "?")
    query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    assert query["error"] == error
    assert query["iss"] == ISSUER
    states = [v for k, v in pairs if k == "state"]
    if len(states) == 1:
        assert query["state"] == "s t&=ate"  # echoed exactly
    assert "code" not in query


async def test_errors_go_as_form_post_when_asked() -> None:
    response = await _run(_with(response_mode="form_post", response_type="token"))
    assert response.status == 200
    body = response.body.decode()
    assert f'action="{CB}"' in body
    assert 'value="unsupported_response_type"' in body
    assert f'value="{ISSUER}"' in body
    assert "form-action https://app.example" in response.headers["Content-Security-Policy"]


async def test_a_loopback_redirect_uri_may_use_any_port() -> None:
    endpoint, signin = _endpoint()
    response = await endpoint.handle(_get(_with(redirect_uri="http://127.0.0.1:49152/native")))
    assert response is STARTED
    assert signin.started[0].redirect_uri == "http://127.0.0.1:49152/native"


async def test_the_only_registered_redirect_uri_is_the_default() -> None:
    """For an OAuth request; an OpenID Connect one must send it (OIDC Core §3.1.2.1)."""
    endpoint, signin = _endpoint()
    oauth = _with(client_id="one-uri", redirect_uri=None, scope="profile")
    assert await endpoint.handle(_get(oauth)) is STARTED
    assert signin.started[0].redirect_uri == CB
    oidc = _with(client_id="one-uri", redirect_uri=None)
    with pytest.raises(UntrustedRedirect, match="required \\(OpenID Connect\\)"):
        await endpoint.handle(_get(oidc))


async def test_a_valid_request_reaches_the_interaction_with_everything_it_needs() -> None:
    endpoint, signin = _endpoint()
    pairs = _with(
        nonce="n-1",
        prompt="login consent",
        max_age="0",
        login_hint="alice",
        resource=RESOURCE,
        response_mode="form_post",
    )
    # An empty parameter counts as omitted (RFC 6749 §3.1).
    assert await endpoint.handle(_get([*pairs, ("ui_locales", "")])) is STARTED
    areq = signin.started[0]
    assert areq == AuthorizeRequest(
        client_id="web",
        redirect_uri=CB,
        scope=("openid", "profile"),
        state="s t&=ate",
        response_mode="form_post",
        code_challenge=CHALLENGE,
        code_challenge_method="S256",
        resource=RESOURCE,
        nonce="n-1",
        prompt=("login", "consent"),
        max_age=0,
        login_hint="alice",
    )
    assert AuthorizeRequest.from_json(areq.to_json()) == areq


async def test_scope_defaults_to_the_client_default() -> None:
    endpoint, signin = _endpoint()
    await endpoint.handle(_get(_with(scope=None)))
    assert signin.started[0].scope == ("openid",)


async def test_a_confidential_client_with_pkce_relaxed_may_omit_it() -> None:
    endpoint, signin = _endpoint()
    pairs = _with(client_id="relaxed", code_challenge=None, code_challenge_method=None)
    assert await endpoint.handle(_get(pairs)) is STARTED
    assert signin.started[0].code_challenge == ""


async def test_post_reads_the_form_body() -> None:
    endpoint, signin = _endpoint()
    request = OAuthRequest(
        "POST",
        "/oauth/authorize",
        headers={"content-type": "application/x-www-form-urlencoded"},
        body=urlencode(GOOD).encode(),
    )
    assert await endpoint.handle(request) is STARTED
    assert signin.started[0].client_id == "web"


@pytest.mark.parametrize("challenge", ["a" * 43, "A" * 128, "-._~" + "0" * 39, CHALLENGE])
async def test_challenges_of_the_rfc_syntax_are_accepted(challenge: str) -> None:
    endpoint, _ = _endpoint()
    assert await endpoint.handle(_get(_with(code_challenge=challenge))) is STARTED
