"""Client authentication decided case by case: credential parsing at its limits, which
attempts are counted against whom, and what the audit trail and the client are told (kills
the mutants of ``oauth/client_auth.py`` and ``crypto.py``; see ``make mutate``)."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import urlencode

import pytest

from oauth_server.crypto import (
    DUMMY_SECRET_HASH,
    hash_secret,
    new_secret,
    new_split_token,
    new_token,
    parse_split_token,
    verify_secret,
)
from oauth_server.errors import InvalidClient, InvalidRequest, OAuthError
from oauth_server.oauth.client_auth import AuthenticatedClient, ClientAuthenticator, parse_basic
from oauth_server.oauth.clients import ClientDirectory
from oauth_server.oauth.http import OAuthRequest
from oauth_server.storage.models import Client
from tests.fakes import MemoryAudit, MemoryClients, make_client

LONG_ID = "i" * 512
LONG_SECRET = "s" * 512


def b64(raw: str) -> str:
    return base64.b64encode(raw.encode()).decode()


# --- parse_basic ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("app:s3cret", ("app", "s3cret")),
        ("app:se:cr:et", ("app", "se:cr:et")),  # the first colon separates (RFC 7617 §2)
        ("a%3Ab:c%2Bd+e", ("a:b", "c+d e")),
        (":", ("", "")),
    ],
)
def test_basic_credentials_are_decoded(raw: str, expected: tuple[str, str]) -> None:
    assert parse_basic(f"Basic {b64(raw)}") == expected
    assert parse_basic(f"  basic   {b64(raw)}  ") == expected


def test_the_longest_accepted_basic_value() -> None:
    encoded = b64("a:" + "x" * 1534)
    assert len(encoded) == 2048
    assert parse_basic(f"Basic {encoded}") == ("a", "x" * 1534)


@pytest.mark.parametrize(
    ("header", "description"),
    [
        ("Bearer abc", "unsupported client authentication scheme; use Basic"),
        (f"Basic {b64('a:b')} {b64('c:d')}", "malformed Basic credentials"),
        ("Basic", "malformed Basic credentials"),
        ("Basic    ", "malformed Basic credentials"),
        ("Basic " + b64("a:" + "x" * 1535), "malformed Basic credentials"),  # 2052 characters
        ("Basic " + b64("a:" + "x" * 2000), "malformed Basic credentials"),
        ("Basic " + b64("no colon here"), "malformed Basic credentials"),
        ("Basic YX*BwOnMzY3JldA==", "malformed Basic credentials"),  # not base64
        ("Basic " + base64.b64encode(b"\xff\xfe:x").decode(), "malformed Basic credentials"),
        ("Basic " + b64("%ff:x"), "malformed Basic credentials"),  # not UTF-8 once unquoted
        ("Basic " + b64("x:%ff"), "malformed Basic credentials"),
    ],
)
def test_bad_basic_credentials(header: str, description: str) -> None:
    with pytest.raises(InvalidClient) as caught:
        parse_basic(header)
    assert caught.value.description == description


# --- ClientAuthenticator -------------------------------------------------------------------


class Limiter:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    async def before_authentication(self, client_id: str, address: str) -> None:
        self.calls.append(("before", client_id, address))

    async def authentication_failed(self, client_id: str, address: str) -> None:
        self.calls.append(("failed", client_id, address))


def authenticator(limiter: Limiter, audit: MemoryAudit) -> ClientAuthenticator:
    clients = MemoryClients(
        make_client("app", "s3cret"),
        make_client(LONG_ID, LONG_SECRET),
        Client(client_id="public", secret_hash=None),
    )
    return ClientAuthenticator(ClientDirectory(clients), limiter=limiter, audit=audit)  # type: ignore[arg-type]


def request(params: dict[str, str], authorization: str | None = None) -> OAuthRequest:
    headers = {"content-type": "application/x-www-form-urlencoded"}
    if authorization is not None:
        headers["authorization"] = authorization
    return OAuthRequest(
        "POST",
        "/oauth/token",
        headers=headers,
        body=urlencode(params).encode(),
        client_ip="203.0.113.9",
    )


async def authenticate(
    params: dict[str, str], authorization: str | None = None
) -> tuple[AuthenticatedClient | OAuthError, Limiter, MemoryAudit]:
    limiter, audit = Limiter(), MemoryAudit()
    try:
        result: AuthenticatedClient | OAuthError = await authenticator(limiter, audit).authenticate(
            request(params, authorization), params
        )
    except OAuthError as error:
        result = error
    return result, limiter, audit


async def test_basic_and_post_are_told_apart() -> None:
    result, limiter, audit = await authenticate({}, f"Basic {b64('app:s3cret')}")
    assert isinstance(result, AuthenticatedClient)
    assert (result.client.client_id, result.method) == ("app", "client_secret_basic")
    assert limiter.calls == [("before", "app", "203.0.113.9")]
    assert audit.events == []
    result, limiter, _ = await authenticate({"client_id": "app", "client_secret": "s3cret"})
    assert isinstance(result, AuthenticatedClient)
    assert (result.client.client_id, result.method) == ("app", "client_secret_post")
    assert limiter.calls == [("before", "app", "203.0.113.9")]


async def test_credentials_at_the_length_limit_are_accepted() -> None:
    result, _, _ = await authenticate({"client_id": LONG_ID, "client_secret": LONG_SECRET})
    assert isinstance(result, AuthenticatedClient)
    assert result.client.client_id == LONG_ID


@pytest.mark.parametrize(
    ("params", "counted_as", "reason"),
    [
        ({"client_id": "app", "client_secret": "wrong"}, "app", "wrong secret"),
        ({"client_id": "nobody", "client_secret": "s3cret"}, "nobody", "unknown client"),
        ({"client_id": "public", "client_secret": ""}, "public", "public client"),
        ({"client_id": "public", "client_secret": "x"}, "public", "public client"),
        # RFC 6749 Appendix A.1: a client id is VSCHARs; anything else names no client.
        ({"client_id": "adm\u00e9in", "client_secret": "x"}, "adm\u00e9in", "malformed client id"),
        ({"client_id": "a\x00b", "client_secret": "s3cret"}, "a\x00b", "malformed client id"),
        ({"client_id": LONG_ID + "i", "client_secret": "x"}, LONG_ID, "credentials too long"),
        (
            {"client_id": LONG_ID, "client_secret": LONG_SECRET + "s"},
            LONG_ID,
            "credentials too long",
        ),
    ],
)
async def test_failures_look_alike_and_are_counted(
    params: dict[str, str], counted_as: str, reason: str
) -> None:
    result, limiter, audit = await authenticate(params)
    assert isinstance(result, InvalidClient)
    assert result.description == "client authentication failed"
    assert result.detail == f"client_id={params['client_id']!r}"
    assert limiter.calls == [
        ("before", params["client_id"], "203.0.113.9"),
        ("failed", counted_as, "203.0.113.9"),
    ]
    assert audit.events == [
        (
            "client_auth_failed",
            {
                "client_id": counted_as,
                "ip": "203.0.113.9",
                "endpoint": "/oauth/token",
                "reason": reason,
            },
        )
    ]


@pytest.mark.parametrize(
    ("params", "authorization", "reason"),
    [
        ({}, None, "client authentication required"),
        ({"client_id": "app"}, None, "client authentication required"),
        ({"client_secret": "s3cret"}, None, "client authentication required"),
        ({}, "Basic !!", "malformed Basic credentials"),
        ({}, "Digest x", "unsupported client authentication scheme; use Basic"),
    ],
)
async def test_unparseable_credentials_are_counted_against_the_address(
    params: dict[str, str], authorization: str | None, reason: str
) -> None:
    result, limiter, audit = await authenticate(params, authorization)
    assert isinstance(result, InvalidClient)
    assert result.description == reason
    assert limiter.calls == [("before", "", "203.0.113.9"), ("failed", "", "203.0.113.9")]
    assert audit.events == [
        (
            "client_auth_failed",
            {"client_id": "", "ip": "203.0.113.9", "endpoint": "/oauth/token", "reason": reason},
        )
    ]


@pytest.mark.parametrize(
    ("params", "description"),
    [
        ({"client_secret": "s3cret"}, "use only one client authentication method"),
        ({"client_id": "other"}, "client_id in the body differs from the Basic credentials"),
    ],
)
async def test_mixed_methods_are_invalid_requests(params: dict[str, str], description: str) -> None:
    result, limiter, _ = await authenticate(params, f"Basic {b64('app:s3cret')}")
    assert isinstance(result, InvalidRequest)
    assert result.description == description
    assert limiter.calls == []
    same, _, _ = await authenticate({"client_id": "app"}, f"Basic {b64('app:s3cret')}")
    assert isinstance(same, AuthenticatedClient)


# --- crypto --------------------------------------------------------------------------------


def test_secret_hashing_and_checking() -> None:
    stored = hash_secret("s3cret")
    assert stored.startswith("sha256$")
    assert verify_secret("s3cret", stored)
    assert not verify_secret("s3cret ", stored)
    assert hash_secret("é") == "sha256$" + hashlib.sha256("é".encode()).hexdigest()
    assert verify_secret("é", hash_secret("é"))
    # A stored value that is not ASCII (a corrupt row) is a mismatch, never an exception.
    assert not verify_secret("s3cret", "sha256$é")
    assert not verify_secret("anything", DUMMY_SECRET_HASH)


def test_random_values_have_their_documented_sizes() -> None:
    assert len(new_token()) == 43  # 32 bytes
    assert len(new_token(16)) == 22
    assert len(new_secret()) == 43
    assert len({new_secret() for _ in range(20)}) == 20


def test_split_tokens_round_trip() -> None:
    for _ in range(50):
        split = new_split_token(1_800_000_000.5)
        assert len(split.value) == 59
        assert parse_split_token(split.value) == (split.selector, split.verifier_hash)
        assert split.selector[:6] == (1_800_000_000_500).to_bytes(6, "big")


async def test_a_malformed_client_id_is_never_looked_up() -> None:
    # Even a row stored under such an id (which no registry could create) is not reached.
    odd = make_client("caf\u00e9", "s3cret")
    clients = MemoryClients(odd, make_client("app", "s3cret"))
    audit = MemoryAudit()
    auth = ClientAuthenticator(ClientDirectory(clients), audit=audit)
    params = {"client_id": "caf\u00e9", "client_secret": "s3cret"}
    with pytest.raises(InvalidClient) as caught:
        await auth.authenticate(request(params), params)
    assert caught.value.description == "client authentication failed"
    assert clients.lookups == 0
    assert audit.events[-1][1]["reason"] == "malformed client id"
    params = {"client_id": "app", "client_secret": "s3cret"}
    assert (await auth.authenticate(request(params), params)).client.client_id == "app"
    assert clients.lookups == 1


# --- public clients, and rows the registry would refuse -----------------------------------


async def test_a_public_client_is_never_authenticated_by_a_secret_or_an_overlong_id() -> None:
    # A public row that carries a secret hash (check_client refuses one; the authenticator
    # does not rely on that): presenting that very secret is still refused, as a public
    # client.
    odd = Client(
        client_id="odd",
        secret_hash=hash_secret("s3cret"),
        client_type="public",
        auth_methods=frozenset({"none"}),
    )
    spa = Client(
        client_id="p" * 512,
        secret_hash=None,
        client_type="public",
        auth_methods=frozenset({"none"}),
    )
    audit = MemoryAudit()
    auth = ClientAuthenticator(ClientDirectory(MemoryClients(odd, spa)), audit=audit)
    params = {"client_id": "odd", "client_secret": "s3cret"}
    with pytest.raises(InvalidClient):
        await auth.authenticate(request(params), params, allow_none=True)
    assert audit.events[-1][1]["reason"] == "public client"
    # `none` with an id one character too long: the first 512 name the public client, but
    # the id presented is not its id.
    params = {"client_id": "p" * 513}
    with pytest.raises(InvalidClient):
        await auth.authenticate(request(params), params, allow_none=True)
    assert audit.events[-1][1]["reason"] == "credentials too long"
    params = {"client_id": "p" * 512}
    result = await auth.authenticate(request(params), params, allow_none=True)
    assert (result.client, result.method) == (spa, "none")
