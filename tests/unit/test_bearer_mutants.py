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
    TooManyRequests,
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


# --- refused tokens are counted per address (RFC 6585 §4) ----------------------------------

CHALLENGE = 'Bearer realm="my-realm", resource_metadata="https://meta.example"'


class BearerLimiter:
    """The rate limiter as the guard sees it: ``lockouts`` addresses are refused up front,
    and the failure numbered ``spend_at`` spends the budget."""

    def __init__(self, *, locked: bool = False, spend_at: int = 0) -> None:
        self.bearer_lockouts: dict[str, float] = {"192.0.2.7": 1e12} if locked else {}
        self.spend_at = spend_at
        self.calls: list[tuple[str, str]] = []

    def before_bearer(self, address: str) -> None:
        self.calls.append(("before", address))
        if address in self.bearer_lockouts:
            raise TooManyRequests(30)

    async def bearer_failed(self, address: str) -> None:
        self.calls.append(("failed", address))
        if len([c for c in self.calls if c[0] == "failed"]) == self.spend_at:
            raise TooManyRequests(60)


def limited_guard(verifier: Fixed, limiter: BearerLimiter) -> ResourceGuard:
    return ResourceGuard(
        verifier,
        resource=RESOURCE,
        realm="my-realm",
        resource_metadata="https://meta.example",
        limiter=limiter,  # type: ignore[arg-type]
    )


def from_address(header: str | None, address: str = "192.0.2.7") -> OAuthRequest:
    headers = {} if header is None else {"authorization": header}
    return OAuthRequest("GET", "/restaurants", headers=headers, client_ip=address)


async def test_a_refused_token_is_counted_against_its_address() -> None:
    limiter = BearerLimiter()
    with pytest.raises(InvalidToken) as caught:
        await limited_guard(Fixed(None), limiter).authenticate(
            from_address("Bearer bad"), any_of=("read",), required=True
        )
    assert (caught.value.realm, caught.value.resource_metadata) == (
        "my-realm",
        "https://meta.example",
    )
    assert limiter.calls == [("failed", "192.0.2.7")]  # no lockout yet: not asked before
    # A token for another resource is a refused token too.
    other = Fixed(claims(audience=("https://other.example",)))
    with pytest.raises(InvalidToken):
        await limited_guard(other, limiter).authenticate(
            from_address("Bearer t"), any_of=("read",), required=True
        )
    assert limiter.calls[-1] == ("failed", "192.0.2.7")
    # Valid tokens, missing tokens and missing scopes are not failures of the token.
    calls = len(limiter.calls)
    guard_ok = limited_guard(Fixed(claims()), limiter)
    assert await guard_ok.authenticate(from_address("Bearer t"), any_of=("read",), required=True)
    assert await guard_ok.authenticate(from_address(None), any_of=("read",), required=False) is None
    with pytest.raises(InsufficientScope):
        await guard_ok.authenticate(from_address("Bearer t"), any_of=("admin",), required=True)
    assert len(limiter.calls) == calls


async def test_the_failure_that_spends_the_budget_is_a_429_with_the_challenge() -> None:
    limiter = BearerLimiter(spend_at=1)
    with pytest.raises(TooManyRequests) as caught:
        await limited_guard(Fixed(None), limiter).authenticate(
            from_address("Bearer bad"), any_of=("read",), required=True
        )
    assert caught.value.retry_after == 60
    assert caught.value.challenge == CHALLENGE
    assert caught.value.headers() == {"Retry-After": "60", "WWW-Authenticate": CHALLENGE}
    assert caught.value.__suppress_context__  # raised from None: no InvalidToken chained


async def test_a_locked_out_address_gets_429_before_its_token_is_looked_at() -> None:
    limiter = BearerLimiter(locked=True)
    verifier = Fixed(claims())
    with pytest.raises(TooManyRequests) as caught:
        await limited_guard(verifier, limiter).authenticate(
            from_address("Bearer t"), any_of=("read",), required=True
        )
    assert caught.value.challenge == CHALLENGE
    assert caught.value.retry_after == 30
    assert verifier.seen == []
    assert limiter.calls == [("before", "192.0.2.7")]
    # Another address, while some address is locked out: asked, and let through.
    got = await limited_guard(verifier, limiter).authenticate(
        from_address("Bearer t", "198.51.100.1"), any_of=("read",), required=True
    )
    assert got is verifier.claims
    assert limiter.calls[-1] == ("before", "198.51.100.1")
