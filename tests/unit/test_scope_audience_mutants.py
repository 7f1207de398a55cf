"""Scopes, audiences, grant selection and the revoked-jti set, case by case (kills the
mutants of ``oauth/scopes.py``, ``oauth/resources.py``, ``oauth/endpoints/token.py``,
``oauth/grants/client_credentials.py`` and ``oauth/tokens/verify/revocation.py``;
see ``make mutate``)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest

from oauth_server.clock import FrozenClock
from oauth_server.errors import (
    InvalidRequest,
    InvalidScope,
    InvalidTarget,
    OAuthError,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from oauth_server.oauth.client_auth import ClientAuthenticator
from oauth_server.oauth.clients import ClientDirectory
from oauth_server.oauth.endpoints.token import TokenEndpoint
from oauth_server.oauth.grants import default_grants
from oauth_server.oauth.http import OAuthRequest
from oauth_server.oauth.resources import resolve_audience
from oauth_server.oauth.scopes import MAX_SCOPES, format_scope, parse_scope, resolve_scope
from oauth_server.oauth.tokens.issue import OpaqueTokenIssuer, TokenService
from oauth_server.oauth.tokens.verify.revocation import RevokedJtis
from oauth_server.storage.models import Change, Client, RevokedToken
from tests.fakes import MemoryAudit, MemoryClients, MemoryTokens, make_client
from tests.helpers import token_codec

DEFAULT = "https://api.example"

# --- scopes --------------------------------------------------------------------------------


def test_scope_formatting_and_the_scope_limit() -> None:
    assert format_scope(["b", "a"]) == "b a"
    fifty = " ".join(f"s{i}" for i in range(MAX_SCOPES))
    assert len(parse_scope(fifty)) == MAX_SCOPES


@pytest.mark.parametrize(
    ("call", "description"),
    [
        (lambda: parse_scope('a "b'), "the scope parameter is malformed"),
        (
            lambda: parse_scope(" ".join(f"s{i}" for i in range(MAX_SCOPES + 1))),
            f"at most {MAX_SCOPES} scopes may be requested",
        ),
        (
            lambda: resolve_scope(None, allowed=frozenset({"a"}), default=()),
            "no scope was requested and the client has no default scope",
        ),
        (
            lambda: resolve_scope("a x y", allowed=frozenset({"a"}), default=()),
            "scope not allowed for this client: x y",
        ),
    ],
)
def test_scope_refusals_say_why(call: object, description: str) -> None:
    with pytest.raises(InvalidScope) as caught:
        call()  # type: ignore[operator]
    assert caught.value.description == description


# --- audiences (RFC 8707) ------------------------------------------------------------------

WITH_RESOURCES = Client(
    client_id="rs", secret_hash=None, resources=("https://one.example", "https://two.example")
)
WITHOUT = Client(client_id="plain", secret_hash=None)


def test_the_audience_defaults() -> None:
    assert resolve_audience(None, client=WITHOUT, default=DEFAULT) == (DEFAULT,)
    assert resolve_audience(None, client=WITH_RESOURCES, default=DEFAULT) == (
        "https://one.example",
    )


def test_a_registered_resource_may_be_requested() -> None:
    got = resolve_audience("https://two.example", client=WITH_RESOURCES, default=DEFAULT)
    assert got == ("https://two.example",)
    assert resolve_audience(DEFAULT, client=WITHOUT, default=DEFAULT) == (DEFAULT,)


@pytest.mark.parametrize(
    ("requested", "client", "description"),
    [
        ("one.example", WITH_RESOURCES, "resource must be an absolute URI without a fragment"),
        ("https://", WITH_RESOURCES, "resource must be an absolute URI without a fragment"),
        ("https:", WITHOUT, "resource must be an absolute URI without a fragment"),
        ("//one.example", WITH_RESOURCES, "resource must be an absolute URI without a fragment"),
        (
            "https://one.example#",
            WITH_RESOURCES,
            "resource must be an absolute URI without a fragment",
        ),
        (
            "https://one.example#f",
            WITH_RESOURCES,
            "resource must be an absolute URI without a fragment",
        ),
        (
            "https://three.example",
            WITH_RESOURCES,
            "this client may not request tokens for that resource",
        ),
        (DEFAULT, WITH_RESOURCES, "this client may not request tokens for that resource"),
    ],
)
def test_audience_refusals_say_why(requested: str, client: Client, description: str) -> None:
    with pytest.raises(InvalidTarget) as caught:
        resolve_audience(requested, client=client, default=DEFAULT)
    assert caught.value.description == description


# --- the token endpoint and the client credentials grant -----------------------------------


class Limiter:
    def __init__(self) -> None:
        self.tokens: list[str] = []

    async def before_authentication(self, client_id: str, address: str) -> None:
        pass

    async def authentication_failed(self, client_id: str, address: str) -> None:
        pass

    async def token_requested(self, client_id: str) -> None:
        self.tokens.append(client_id)


def endpoint(
    limiter: Limiter | None = None, audit: MemoryAudit | None = None, **kwargs: Any
) -> TokenEndpoint:
    two = make_client("two", "x", scopes=("a", "b"), default_scopes=("a", "b"))
    rs = Client(
        client_id="rs",
        secret_hash=two.secret_hash,
        scopes=frozenset({"a"}),
        default_scopes=("a",),
        resources=("https://one.example", "https://two.example"),
    )
    clients = MemoryClients(
        make_client("app", "s3cret"),
        two,
        rs,
        make_client("code-only", "x", grant_types=frozenset({"authorization_code"})),
    )
    issuer = OpaqueTokenIssuer(
        MemoryTokens(), codec=token_codec(FrozenClock()), clock=FrozenClock(1000.0), ttl=3600
    )
    return TokenEndpoint(
        authenticator=ClientAuthenticator(ClientDirectory(clients)),
        grants=default_grants(default_resource=DEFAULT),
        tokens=TokenService({"opaque": issuer}),
        limiter=limiter,  # type: ignore[arg-type]
        audit=audit or MemoryAudit(),
        **kwargs,
    )


def form(**params: str) -> OAuthRequest:
    return OAuthRequest(
        "POST",
        "/oauth/token",
        headers={"content-type": "application/x-www-form-urlencoded"},
        body=urlencode(params).encode(),
        client_ip="198.51.100.4",
    )


async def test_the_granted_scope_is_sent_when_it_differs() -> None:
    response = await endpoint().handle(
        form(grant_type="client_credentials", client_id="two", client_secret="x")
    )
    assert json.loads(response.body)["scope"] == "a b"
    response = await endpoint().handle(
        form(grant_type="client_credentials", client_id="two", client_secret="x", scope="b a")
    )
    assert "scope" not in json.loads(response.body)


async def test_issued_tokens_are_counted_per_client_and_audited_only_on_request() -> None:
    limiter, audit = Limiter(), MemoryAudit()
    await endpoint(limiter, audit).handle(
        form(grant_type="client_credentials", client_id="two", client_secret="x")
    )
    assert limiter.tokens == ["two"]
    assert audit.events == []
    await endpoint(limiter, audit, audit_issued=True).handle(
        form(grant_type="client_credentials", client_id="two", client_secret="x")
    )
    assert [(kind, fields["scope"]) for kind, fields in audit.events] == [("token_issued", "a b")]


async def test_the_resource_parameter_sets_the_audience() -> None:
    tokens = MemoryTokens()
    issuer = OpaqueTokenIssuer(
        tokens, codec=token_codec(FrozenClock()), clock=FrozenClock(1000.0), ttl=3600
    )
    built = endpoint()
    built._tokens = TokenService({"opaque": issuer})
    await built.handle(
        form(
            grant_type="client_credentials",
            client_id="rs",
            client_secret="x",
            resource="https://two.example",
        )
    )
    [record] = tokens.rows.values()
    assert record.audience == "https://two.example"
    with pytest.raises(InvalidTarget):
        await built.handle(
            form(
                grant_type="client_credentials", client_id="rs", client_secret="x", resource=DEFAULT
            )
        )


@pytest.mark.parametrize(
    ("params", "error", "description"),
    [
        (
            {"client_id": "app", "client_secret": "s3cret"},
            InvalidRequest,
            "the grant_type parameter is required",
        ),
        (
            {"grant_type": "password", "client_id": "app", "client_secret": "s3cret"},
            UnsupportedGrantType,
            "unsupported grant_type: password",
        ),
        (
            {"grant_type": "g" * 100, "client_id": "app", "client_secret": "s3cret"},
            UnsupportedGrantType,
            "unsupported grant_type: " + "g" * 64,
        ),
        (
            {"grant_type": "client_credentials", "client_id": "code-only", "client_secret": "x"},
            UnauthorizedClient,
            "this client may not use the client_credentials grant",
        ),
    ],
)
async def test_grant_refusals_say_why(
    params: dict[str, str], error: type[OAuthError], description: str
) -> None:
    with pytest.raises(OAuthError) as caught:
        await endpoint().handle(form(**params))
    assert type(caught.value) is error
    assert caught.value.description == description


# --- the revoked-jti set -------------------------------------------------------------------


def test_expired_entries_are_dropped_at_the_prune_interval() -> None:
    clock = FrozenClock(0)
    revoked = RevokedJtis(clock=clock, max_token_ttl=3600)
    revoked.add("gone", 0)  # already expired: the first add prunes at once
    assert not revoked.is_revoked("gone")
    revoked.add("j", 100)
    revoked.add("j", 50)  # a later, shorter expiry never shortens the entry
    revoked.add("edge", 60)
    revoked.add("early", 30)
    clock.advance(59)
    # The prune is a pass over the whole set: at most one a minute, not one per add. Until it
    # runs, an expired entry stays (harmless: its token is refused as expired anyway).
    revoked.add("x", 1000)
    assert revoked.is_revoked("edge")
    assert revoked.is_revoked("early")
    clock.advance(1)
    revoked.add("y", 1000)  # t = 60: prune; an entry expiring now goes
    assert not revoked.is_revoked("edge")
    assert not revoked.is_revoked("early")
    assert revoked.is_revoked("j")
    assert len(revoked) == 3
    clock.advance(60)
    revoked.add("z", 1000)  # t = 120: the next prune; "j" (100) is gone
    assert not revoked.is_revoked("j")
    assert len(revoked) == 3


def test_feed_changes_are_remembered_for_the_longest_token_lifetime() -> None:
    clock = FrozenClock(1000)
    revoked = RevokedJtis(clock=clock, max_token_ttl=500)
    revoked.on_change(Change(change_id=1, kind="jti", key="j-1"))
    assert revoked.is_revoked("j-1")
    assert not revoked.is_revoked("j-2")
    clock.advance(499)
    revoked.add("other", 10_000)
    assert revoked.is_revoked("j-1")
    clock.advance(61)  # 1560: past 1000 + 500
    revoked.add("other", 10_000)
    assert not revoked.is_revoked("j-1")


async def test_loading_reads_the_active_revocations_now() -> None:
    class Repository:
        def __init__(self) -> None:
            self.asked: list[int] = []

        async def active(self, *, now: int) -> list[RevokedToken]:
            self.asked.append(now)
            return [RevokedToken(jti="j-1", client_id="app", expires_at=2000, revoked_at=900)]

    clock = FrozenClock(1000.7)
    revoked = RevokedJtis(clock=clock, max_token_ttl=500)
    repository = Repository()
    await revoked.load(repository)  # type: ignore[arg-type]
    assert repository.asked == [1000]
    assert revoked.is_revoked("j-1")
    clock.advance(999)
    revoked.add("x", 5000)  # prune at 1999.7: still live
    assert revoked.is_revoked("j-1")
    clock.advance(61)
    revoked.add("x", 5000)
    assert not revoked.is_revoked("j-1")
