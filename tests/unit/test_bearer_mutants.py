"""The resource server's decision, case by case: which credentials are read, which tokens
are accepted for this resource and scope, and what each refusal says (kills the mutants of
``resource/bearer.py``; see ``make mutate``)."""

from __future__ import annotations

import pytest

from oauth_server.errors import (
    BearerChallenge,
    BearerError,
    InsufficientScope,
    InvalidBearerRequest,
    InvalidToken,
)
from oauth_server.oauth.http import OAuthRequest
from oauth_server.oauth.tokens.verify.claims import MAX_TOKEN_LENGTH, AccessClaims
from oauth_server.resource.bearer import ResourceGuard, bearer_token

RESOURCE = "https://api.example"


def request(authorization: str | None) -> OAuthRequest:
    headers = {} if authorization is None else {"authorization": authorization}
    return OAuthRequest("GET", "/restaurants", headers=headers)


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer abc", "abc"),
        ("BEARER abc", "abc"),
        ("  Bearer   a-b.c_d~e+f/g==  ", "a-b.c_d~e+f/g=="),
        ("Bearer " + "x" * MAX_TOKEN_LENGTH, "x" * MAX_TOKEN_LENGTH),
    ],
)
def test_bearer_credentials_are_read(header: str, token: str) -> None:
    assert bearer_token(request(header)) == token


def test_no_header_is_no_token() -> None:
    assert bearer_token(request(None)) is None
    # Header names reach the core in lower case; only that one is read.
    assert bearer_token(OAuthRequest("GET", "/", headers={"Authorization": "x"})) is None


@pytest.mark.parametrize(
    ("header", "error", "description"),
    [
        ("Basic abc", BearerChallenge, "use the Bearer authentication scheme"),
        ("Bearerabc", BearerChallenge, "use the Bearer authentication scheme"),
        ("Bearer", InvalidBearerRequest, "the Bearer credentials are empty"),
        ("Bearer    ", InvalidBearerRequest, "the Bearer credentials are empty"),
        ("Bearer a b", InvalidBearerRequest, "the Bearer credentials are malformed"),
        ("Bearer a,b", InvalidBearerRequest, "the Bearer credentials are malformed"),
        ("Bearer =abc", InvalidBearerRequest, "the Bearer credentials are malformed"),
        ("Bearer " + "x" * (MAX_TOKEN_LENGTH + 1), InvalidToken, "the access token is too long"),
    ],
)
def test_bad_credentials(header: str, error: type[BearerError], description: str) -> None:
    with pytest.raises(BearerError) as caught:
        bearer_token(request(header))
    assert type(caught.value) is error
    assert caught.value.description == description


class Fixed:
    def __init__(self, claims: AccessClaims | None) -> None:
        self.claims = claims
        self.seen: list[str] = []

    async def verify(self, token: str) -> AccessClaims:
        self.seen.append(token)
        if self.claims is None:
            raise InvalidToken("the access token is not valid")
        return self.claims


def claims(
    *, scope: tuple[str, ...] = ("read",), audience: tuple[str, ...] = (RESOURCE,)
) -> AccessClaims:
    return AccessClaims(
        client_id="app",
        subject="app",
        scope=frozenset(scope),
        issued_at=0,
        expires_at=1,
        audience=audience,
    )


def guard(verifier: Fixed) -> ResourceGuard:
    return ResourceGuard(
        verifier, resource=RESOURCE, realm="my-realm", resource_metadata="https://meta.example"
    )


async def refusal(verifier: Fixed, header: str | None, **kwargs: object) -> BearerError:
    with pytest.raises(BearerError) as caught:
        await guard(verifier).authenticate(request(header), **kwargs)  # type: ignore[arg-type]
    error = caught.value
    assert (error.realm, error.resource_metadata) == ("my-realm", "https://meta.example")
    return error


async def test_a_valid_token_for_this_resource_and_scope_passes() -> None:
    verifier = Fixed(claims(scope=("write", "read")))
    got = await guard(verifier).authenticate(request("Bearer t0k"), any_of=("read",), required=True)
    assert got is verifier.claims
    assert verifier.seen == ["t0k"]
    got = await guard(verifier).authenticate(
        request("Bearer t0k"), any_of=("admin", "write"), required=False
    )
    assert got is verifier.claims


async def test_no_token() -> None:
    verifier = Fixed(claims())
    assert (
        await guard(verifier).authenticate(request(None), any_of=("read",), required=False) is None
    )
    error = await refusal(verifier, None, any_of=("read",), required=True)
    assert type(error) is BearerChallenge
    assert error.description == "an access token is required"
    assert verifier.seen == []


async def test_an_invalid_token_is_never_treated_as_absent() -> None:
    error = await refusal(Fixed(None), "Bearer bad", any_of=("read",), required=False)
    assert type(error) is InvalidToken
    error = await refusal(Fixed(claims()), "Basic x", any_of=("read",), required=False)
    assert type(error) is BearerChallenge


async def test_a_token_for_another_resource_is_refused() -> None:
    other = Fixed(claims(audience=("https://other.example", RESOURCE + "/")))
    error = await refusal(other, "Bearer t", any_of=("read",), required=True)
    assert type(error) is InvalidToken
    assert error.description == "the access token is not meant for this resource"
    assert (
        await guard(Fixed(claims(audience=("https://x", RESOURCE)))).authenticate(
            request("Bearer t"), any_of=("read",), required=True
        )
    ) is not None


async def test_a_token_without_the_scope_is_refused_naming_the_scopes() -> None:
    error = await refusal(
        Fixed(claims(scope=("other",))), "Bearer t", any_of=("b", "a"), required=True
    )
    assert type(error) is InsufficientScope
    assert error.description == "the access token lacks the required scope"
    assert error.scope == "a b"
