"""What the core reports through its :class:`~oauth_server.observer.Observer` (the metrics
seam), driven without HTTP: the token endpoint's outcomes with the client only once it
authenticated, introspection results, every rate-limit refusal (the audit trail keeps one a
minute), and the request notes the request log reads."""

from __future__ import annotations

import base64
from urllib.parse import urlencode

import pytest

from oauth_server.clock import FrozenClock
from oauth_server.errors import InvalidClient, InvalidScope, TooManyRequests, UnsupportedGrantType
from oauth_server.oauth.client_auth import ClientAuthenticator
from oauth_server.oauth.clients import ClientDirectory
from oauth_server.oauth.endpoints.introspect import IntrospectionEndpoint
from oauth_server.oauth.endpoints.token import TokenEndpoint
from oauth_server.oauth.grants import default_grants
from oauth_server.oauth.http import OAuthRequest
from oauth_server.oauth.ratelimit import RateLimiter, RateLimitPolicy
from oauth_server.oauth.tokens.issue import OpaqueTokenIssuer, TokenService
from oauth_server.oauth.tokens.verify.opaque import OpaqueTokenVerifier
from oauth_server.observer import AuthorizationOutcome
from tests.fakes import MemoryClients, MemoryTokens, make_client
from tests.helpers import token_codec

RESOURCE = "https://api.example"


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []

    def token_issued(self, grant_type: str, client_id: str) -> None:
        self.calls.append(("issued", grant_type, client_id))

    def token_failed(self, error: str, client_id: str | None) -> None:
        self.calls.append(("failed", error, client_id))

    def refresh_rotated(self) -> None:
        self.calls.append(("rotated",))

    def refresh_reused(self) -> None:
        self.calls.append(("reused",))

    def code_replayed(self) -> None:
        self.calls.append(("replayed",))

    def authorization(self, outcome: AuthorizationOutcome) -> None:
        self.calls.append(("authorization", outcome))

    def rate_limited(self, limit: str) -> None:
        self.calls.append(("limited", limit))

    def introspected(self, active: bool) -> None:
        self.calls.append(("introspected", active))


class Exploding(OpaqueTokenIssuer):
    def __init__(self, error: Exception) -> None:
        clock = FrozenClock(1000.0)
        super().__init__(MemoryTokens(), codec=token_codec(clock), clock=clock, ttl=60)
        self.error = error

    async def issue(self, *args: object, **kwargs: object) -> object:  # type: ignore[override]
        raise self.error


def token_endpoint(observer: Recorder, issuer: OpaqueTokenIssuer | None = None) -> TokenEndpoint:
    clients = MemoryClients(make_client("app", "s3cret"))
    return TokenEndpoint(
        authenticator=ClientAuthenticator(ClientDirectory(clients)),
        grants=default_grants(default_resource=RESOURCE),
        tokens=TokenService(
            # Clients default to JWTs; an opaque issuer under that name needs no keys.
            {
                "jwt": issuer
                or OpaqueTokenIssuer(
                    MemoryTokens(),
                    codec=token_codec(FrozenClock(1000.0)),
                    clock=FrozenClock(1000.0),
                    ttl=60,
                )
            }
        ),
        observer=observer,
    )


def form(path: str = "/oauth/token", **params: str) -> OAuthRequest:
    return OAuthRequest(
        "POST",
        path,
        headers={"content-type": "application/x-www-form-urlencoded"},
        body=urlencode(params).encode(),
        client_ip="198.51.100.4",
    )


APP = {"client_id": "app", "client_secret": "s3cret"}


async def test_issued_tokens_name_the_grant_and_the_authenticated_client() -> None:
    observer = Recorder()
    request = form(grant_type="client_credentials", **APP)
    response = await token_endpoint(observer).handle(request)
    assert response.status == 200
    assert observer.calls == [("issued", "client_credentials", "app")]
    assert (request.notes.client_id, request.notes.user_id) == ("app", None)


@pytest.mark.parametrize(
    ("params", "error", "client_id", "raised"),
    [
        ({"grant_type": "client_credentials", "client_id": "app", "client_secret": "no"},
         "invalid_client", None, InvalidClient),
        ({"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "x"},
         "invalid_client", None, InvalidClient),
        ({"grant_type": "password", **APP}, "unsupported_grant_type", None, UnsupportedGrantType),
        ({"grant_type": "client_credentials", "scope": "nope", **APP},
         "invalid_scope", "app", InvalidScope),
    ],
)  # fmt: skip
async def test_failures_name_the_client_only_once_it_authenticated(
    params: dict[str, str], error: str, client_id: str | None, raised: type[Exception]
) -> None:
    observer = Recorder()
    request = form(**params)
    with pytest.raises(raised):
        await token_endpoint(observer).handle(request)
    assert observer.calls == [("failed", error, client_id)]
    assert request.notes.client_id == client_id


@pytest.mark.parametrize(
    ("error", "code"),
    [(ConnectionRefusedError(111, "refused"), "temporarily_unavailable"),
     (RuntimeError("a bug"), "server_error")],
)  # fmt: skip
async def test_unexpected_failures_are_counted_as_the_renderer_answers_them(
    error: Exception, code: str
) -> None:
    observer = Recorder()
    with pytest.raises(type(error)):
        await token_endpoint(observer, Exploding(error)).handle(
            form(grant_type="client_credentials", **APP)
        )
    assert observer.calls == [("failed", code, "app")]


async def test_introspection_results() -> None:
    observer = Recorder()
    tokens = MemoryTokens()
    clock = FrozenClock(1000.0)
    issuer = OpaqueTokenIssuer(tokens, codec=token_codec(clock), clock=clock, ttl=60)
    clients = MemoryClients(make_client("app", "s3cret"), make_client("other", "s4"))
    endpoint = IntrospectionEndpoint(
        authenticator=ClientAuthenticator(ClientDirectory(clients)),
        verifier=OpaqueTokenVerifier(
            tokens, issuer="https://as.example", clock=clock, codec=token_codec(clock)
        ),
        observer=observer,
    )
    services = TokenService({"jwt": issuer})  # as above: opaque tokens for JWT clients
    issued = await services.issue(
        await default_grants(default_resource=RESOURCE)["client_credentials"].validate(
            client=await ClientAuthenticator(ClientDirectory(clients)).authenticate(
                form(grant_type="client_credentials", **APP), APP
            ),
            params={"grant_type": "client_credentials"},
        )
    )
    token = issued.access.access_token

    def by(client_id: str, secret: str, value: str) -> OAuthRequest:
        basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        return OAuthRequest(
            "POST",
            "/oauth/introspect",
            headers={
                "content-type": "application/x-www-form-urlencoded",
                "authorization": f"Basic {basic}",
            },
            body=urlencode({"token": value}).encode(),
        )

    await endpoint.handle(by("app", "s3cret", token))  # its own: active
    await endpoint.handle(by("app", "s3cret", "unknown"))  # unknown: inactive
    await endpoint.handle(by("other", "s4", token))  # not its business: inactive
    assert observer.calls == [
        ("introspected", True),
        ("introspected", False),
        ("introspected", False),
    ]


async def test_every_rate_limit_refusal_is_counted() -> None:
    observer = Recorder()
    limiter = RateLimiter(RateLimitPolicy(auth_failures_per_address="1/minute"), observer=observer)
    await limiter.authentication_failed("", "192.0.2.1")
    for _ in range(3):  # the audit trail records the first; metrics count all three
        with pytest.raises(TooManyRequests):
            await limiter.before_authentication("", "192.0.2.1")
    assert observer.calls == [("limited", "auth-failures-address")] * 3
