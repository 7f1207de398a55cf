"""Client types, token endpoint auth methods and redirect URIs: what the registry accepts, how
``none`` authenticates a public client and only one, and what client_credentials may grant."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import pytest

from oauth_server.clock import FrozenClock
from oauth_server.errors import InvalidClient, InvalidScope, OAuthError
from oauth_server.oauth.client_auth import AuthenticatedClient, ClientAuthenticator
from oauth_server.oauth.clients import ClientDirectory, ClientRegistry, InvalidClientMetadata
from oauth_server.oauth.endpoints.token import TokenEndpoint
from oauth_server.oauth.grants import default_grants
from oauth_server.oauth.grants.client_credentials import ClientCredentialsGrant
from oauth_server.oauth.http import OAuthRequest
from oauth_server.oauth.tokens.issue import Authorization, OpaqueTokenIssuer, TokenService
from oauth_server.storage.models import Client
from tests.fakes import MemoryAudit, MemoryClients, MemoryTokens, make_client
from tests.helpers import basic, token_codec

NOW = 1_800_000_000
CALLBACK = "https://app.example/callback"
NATIVE = "com.example.app:/callback"


class Changes:
    def __init__(self) -> None:
        self.published: list[tuple[str, str, int]] = []

    async def publish(self, *, kind: str, key: str, now: int) -> None:
        self.published.append((kind, key, now))


class Storage:
    def __init__(self) -> None:
        self.clients = MemoryClients()
        self.changes = Changes()


def registry() -> tuple[ClientRegistry, Storage, MemoryAudit]:
    storage, audit = Storage(), MemoryAudit()
    made = ClientRegistry(storage, clock=FrozenClock(NOW), audit=audit)  # type: ignore[arg-type]
    return made, storage, audit


SIGN_IN = ("authorization_code", "refresh_token")


# --- registration --------------------------------------------------------------------------


async def test_a_public_client_has_no_secret_authenticates_with_none_and_uses_pkce() -> None:
    made, storage, audit = registry()
    created = await made.create(
        client_id="spa",
        name="My App",
        client_type="public",
        grant_types=SIGN_IN,
        scopes=("openid", "profile", "email", "offline_access", "restaurants:read"),
        redirect_uris=(CALLBACK, "http://127.0.0.1/callback", NATIVE),
        post_logout_redirect_uris=("https://app.example/bye",),
        require_consent=False,
    )
    assert created.secret is None
    client = created.client
    assert client.secret_hash is None
    assert client.client_type == "public"
    assert client.auth_methods == {"none"}
    assert client.redirect_uris == (CALLBACK, "http://127.0.0.1/callback", NATIVE)  # in order
    assert client.post_logout_redirect_uris == ("https://app.example/bye",)
    assert (client.require_consent, client.require_pkce) == (False, True)
    assert storage.clients.rows["spa"] == client
    assert storage.changes.published == [("client", "spa", NOW)]
    assert audit.kinds() == ["client_created"]


async def test_a_confidential_client_gets_a_secret_and_both_secret_methods_by_default() -> None:
    made, _, _ = registry()
    created = await made.create(client_id="svc", scopes=("restaurants:read",))
    assert created.secret is not None
    assert created.client.client_type == "confidential"
    assert created.client.auth_methods == {"client_secret_basic", "client_secret_post"}
    assert created.client.redirect_uris == ()
    web = await made.create(
        client_id="web",
        grant_types=("authorization_code",),
        auth_methods=("client_secret_basic",),
        redirect_uris=(CALLBACK,),
        require_pkce=False,
    )
    assert web.client.auth_methods == {"client_secret_basic"}
    assert web.client.require_pkce is False


def test_rows_from_before_client_types_keep_todays_behaviour() -> None:
    old = Client(client_id="old", secret_hash="sha256$x")
    assert old.client_type == "confidential"
    assert old.auth_methods == {"client_secret_basic", "client_secret_post"}
    assert (old.redirect_uris, old.post_logout_redirect_uris) == ((), ())
    assert (old.require_consent, old.require_pkce) == (True, True)


PUBLIC: dict[str, Any] = {
    "client_type": "public",
    "grant_types": SIGN_IN,
    "redirect_uris": (CALLBACK,),
}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {**PUBLIC, "grant_types": ("client_credentials",)},
            "a public client may only use the authorization_code and refresh_token grants",
        ),
        (
            {**PUBLIC, "grant_types": ("authorization_code", "client_credentials")},
            "a public client may only use the authorization_code and refresh_token grants",
        ),
        ({**PUBLIC, "auth_methods": ("client_secret_post",)}, "authenticates with none"),
        ({**PUBLIC, "require_pkce": False}, "a public client must use PKCE"),
        ({**PUBLIC, "redirect_uris": ()}, "the authorization_code grant needs a redirect URI"),
        ({"auth_methods": ("none",)}, "none is for public clients"),
        ({"auth_methods": ()}, "a confidential client authenticates with client_secret_basic"),
        ({"client_type": "native"}, "client type must be confidential or public"),
        (
            {"grant_types": ("refresh_token",)},
            "the refresh_token grant needs the authorization_code grant",
        ),
        ({"redirect_uris": (CALLBACK,)}, "a redirect URI needs the authorization_code grant"),
        (
            {"post_logout_redirect_uris": (CALLBACK,)},
            "a post-logout redirect URI needs the authorization_code grant",
        ),
        ({**PUBLIC, "redirect_uris": (CALLBACK, CALLBACK)}, "a redirect URI is given twice"),
        (
            {**PUBLIC, "redirect_uris": ("javascript:alert(1)",)},
            "invalid redirect URI 'javascript:alert(1)': the javascript: scheme is never allowed",
        ),
        (
            {**PUBLIC, "redirect_uris": ("http://app.example/cb",)},
            "invalid redirect URI 'http://app.example/cb': must use https",
        ),
        (
            {**PUBLIC, "post_logout_redirect_uris": ("https://app.example/#x",)},
            "invalid post-logout redirect URI 'https://app.example/#x': has a fragment",
        ),
        ({"scopes": ("openid", "restaurants:read")}, "scope openid needs a signed-in user"),
        ({"scopes": ("email",)}, "scope email needs a signed-in user"),
        (
            {**PUBLIC, "grant_types": ("authorization_code",), "scopes": ("offline_access",)},
            "scope offline_access needs the refresh_token grant",
        ),
        (
            {**PUBLIC, "scopes": ("openid",), "default_scopes": ("email",)},
            "default scopes must be among the allowed scopes",
        ),
    ],
)
async def test_inconsistent_registrations_are_refused(kwargs: dict[str, Any], message: str) -> None:
    made, storage, _ = registry()
    with pytest.raises(InvalidClientMetadata) as caught:
        await made.create(client_id="x", **kwargs)
    assert message in str(caught.value)
    assert storage.clients.rows == {}
    assert storage.changes.published == []


async def test_update_replaces_what_it_names_and_checks_the_result() -> None:
    made, storage, audit = registry()
    await made.create(client_id="spa", scopes=("openid", "profile"), **PUBLIC)
    before = storage.clients.rows["spa"]
    updated = await made.update(
        "spa",
        redirect_uris=(NATIVE, "http://[::1]/cb"),
        post_logout_redirect_uris=("https://app.example/bye",),
        scopes=("openid", "email"),
        require_consent=False,
    )
    assert updated is not None
    assert updated.redirect_uris == (NATIVE, "http://[::1]/cb")
    assert updated.post_logout_redirect_uris == ("https://app.example/bye",)
    assert updated.scopes == {"openid", "email"}
    assert updated.default_scopes == ("openid", "email")
    assert updated.require_consent is False
    assert (updated.client_type, updated.grant_types) == (before.client_type, before.grant_types)
    assert storage.clients.rows["spa"] == updated
    assert storage.changes.published[-1] == ("client", "spa", NOW)
    assert audit.kinds() == ["client_created", "client_updated"]
    again = await made.update("spa", require_consent=True)
    assert again is not None
    assert again.require_consent is True
    assert again.redirect_uris == updated.redirect_uris


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"redirect_uris": ("https://app.example/cb#frag",)}, "has a fragment"),
        ({"redirect_uris": ("myapp:/cb",)}, "private-use scheme"),
        ({"scopes": ("openid", "offline_access")}, "offline_access needs the refresh_token"),
    ],
)
async def test_an_invalid_update_changes_nothing(kwargs: dict[str, Any], message: str) -> None:
    made, storage, _ = registry()
    await made.create(
        client_id="web", grant_types=("authorization_code",), redirect_uris=(CALLBACK,)
    )
    before = storage.clients.rows["web"]
    published = list(storage.changes.published)
    with pytest.raises(InvalidClientMetadata) as caught:
        await made.update("web", **kwargs)
    assert message in str(caught.value)
    assert storage.clients.rows["web"] == before
    assert storage.changes.published == published


async def test_a_public_client_gets_no_secret_by_rotation() -> None:
    made, storage, _ = registry()
    await made.create(client_id="spa", **PUBLIC)
    with pytest.raises(InvalidClientMetadata, match="a public client has no secret to rotate"):
        await made.rotate_secret("spa")
    assert storage.clients.rows["spa"].secret_hash is None


async def test_updating_an_unknown_client_is_none() -> None:
    made, storage, _ = registry()
    assert await made.update("ghost", require_consent=False) is None
    assert storage.changes.published == []


# --- authentication with none --------------------------------------------------------------


class Limiter:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    async def before_authentication(self, client_id: str, address: str) -> None:
        self.calls.append(("before", client_id))

    async def authentication_failed(self, client_id: str, address: str) -> None:
        self.calls.append(("failed", client_id))


def public_client(client_id: str = "spa") -> Client:
    return Client(
        client_id=client_id,
        secret_hash=None,
        client_type="public",
        auth_methods=frozenset({"none"}),
        grant_types=frozenset(SIGN_IN),
        redirect_uris=(CALLBACK,),
    )


def clients() -> MemoryClients:
    basic_only = Client(
        client_id="basic-only",
        secret_hash=make_client("x", "s3cret").secret_hash,
        auth_methods=frozenset({"client_secret_basic"}),
    )
    return MemoryClients(public_client(), make_client("app", "s3cret"), basic_only)


def request(params: Mapping[str, str], authorization: str | None = None) -> OAuthRequest:
    headers = {"content-type": "application/x-www-form-urlencoded"}
    if authorization is not None:
        headers["authorization"] = authorization
    return OAuthRequest(
        "POST", "/oauth/token", headers=headers, body=urlencode(params).encode(), client_ip="ip"
    )


async def authenticate(
    params: dict[str, str], *, allow_none: bool, authorization: str | None = None
) -> tuple[AuthenticatedClient | OAuthError, Limiter, MemoryAudit]:
    limiter, audit = Limiter(), MemoryAudit()
    auth = ClientAuthenticator(ClientDirectory(clients()), limiter=limiter, audit=audit)  # type: ignore[arg-type]
    try:
        result: AuthenticatedClient | OAuthError = await auth.authenticate(
            request(params, authorization), params, allow_none=allow_none
        )
    except OAuthError as error:
        result = error
    return result, limiter, audit


async def test_a_public_client_authenticates_with_its_client_id_where_none_is_allowed() -> None:
    result, limiter, audit = await authenticate({"client_id": "spa"}, allow_none=True)
    assert isinstance(result, AuthenticatedClient)
    assert (result.client.client_id, result.method) == ("spa", "none")
    assert limiter.calls == [("before", "spa")]
    assert audit.events == []


@pytest.mark.parametrize(
    ("params", "allow_none", "authorization", "counted_as", "reason"),
    [
        # A confidential client presenting none.
        ({"client_id": "app"}, True, None, "app", "confidential client without a secret"),
        ({"client_id": "nobody"}, True, None, "nobody", "unknown client"),
        ({"client_id": "bad id\x01"}, True, None, "bad id\x01", "malformed client id"),
        ({"client_id": "i" * 513}, True, None, "i" * 512, "credentials too long"),
        # A public client presenting a secret, in either method, whatever it is.
        ({"client_id": "spa", "client_secret": ""}, True, None, "spa", "public client"),
        ({"client_id": "spa", "client_secret": "x"}, True, None, "spa", "public client"),
        ({}, True, basic("spa", "x"), "spa", "public client"),
        ({}, True, basic("spa", ""), "spa", "public client"),
        ({"client_id": "spa", "client_secret": "x"}, False, None, "spa", "public client"),
        # A confidential client using a method it is not registered for.
        (
            {"client_id": "basic-only", "client_secret": "s3cret"},
            False,
            None,
            "basic-only",
            "method not registered",
        ),
    ],
)
async def test_none_and_secrets_in_the_wrong_hands_are_invalid_client(
    params: dict[str, str],
    allow_none: bool,
    authorization: str | None,
    counted_as: str,
    reason: str,
) -> None:
    result, limiter, audit = await authenticate(
        params, allow_none=allow_none, authorization=authorization
    )
    assert isinstance(result, InvalidClient)
    assert result.description == "client authentication failed"
    assert limiter.calls == [
        ("before", params.get("client_id", counted_as)),
        ("failed", counted_as),
    ]
    assert audit.events == [
        (
            "client_auth_failed",
            {"client_id": counted_as, "ip": "ip", "endpoint": "/oauth/token", "reason": reason},
        )
    ]


async def test_none_is_refused_where_the_caller_does_not_allow_it() -> None:
    # client_credentials, introspection, revocation: a client_id alone authenticates no one,
    # counted against the address as before client types.
    result, limiter, audit = await authenticate({"client_id": "spa"}, allow_none=False)
    assert isinstance(result, InvalidClient)
    assert result.description == "client authentication required"
    assert limiter.calls == [("before", ""), ("failed", "")]
    assert audit.events[0][1]["reason"] == "client authentication required"


async def test_the_basic_only_client_still_authenticates_with_basic() -> None:
    result, _, _ = await authenticate(
        {}, allow_none=False, authorization=basic("basic-only", "s3cret")
    )
    assert isinstance(result, AuthenticatedClient)
    assert result.method == "client_secret_basic"


# --- the token endpoint: none only for the public clients' grants --------------------------


class FakeCodeGrant:
    """Stands in for the authorization_code grant (built elsewhere): records who reached it."""

    grant_type = "authorization_code"

    def __init__(self) -> None:
        self.reached: list[str] = []

    async def validate(
        self, *, client: AuthenticatedClient, params: Mapping[str, str]
    ) -> Authorization:
        self.reached.append(client.method)
        raise InvalidScope("stop here")


def endpoint(grant: FakeCodeGrant) -> TokenEndpoint:
    issuer = OpaqueTokenIssuer(
        MemoryTokens(), codec=token_codec(FrozenClock()), clock=FrozenClock(1000.0), ttl=3600
    )
    grants = {**default_grants(default_resource="https://api.example"), grant.grant_type: grant}
    return TokenEndpoint(
        authenticator=ClientAuthenticator(ClientDirectory(clients())),
        grants=grants,
        tokens=TokenService({"opaque": issuer}),
    )


async def test_the_token_endpoint_allows_none_only_for_public_client_grants() -> None:
    grant = FakeCodeGrant()
    with pytest.raises(InvalidScope):
        await endpoint(grant).handle(
            request({"grant_type": "authorization_code", "client_id": "spa"})
        )
    assert grant.reached == ["none"]
    with pytest.raises(InvalidClient) as caught:
        await endpoint(grant).handle(
            request({"grant_type": "client_credentials", "client_id": "spa"})
        )
    assert caught.value.description == "client authentication required"
    with pytest.raises(InvalidClient):
        await endpoint(grant).handle(
            request({"grant_type": "authorization_code", "client_id": "app"})
        )
    assert grant.reached == ["none"]


# --- client_credentials never grants OpenID Connect scopes ---------------------------------


def mixed_client() -> AuthenticatedClient:
    client = Client(
        client_id="web",
        secret_hash="x",
        grant_types=frozenset({"client_credentials", "authorization_code"}),
        scopes=frozenset({"openid", "profile", "restaurants:read"}),
        default_scopes=("openid", "restaurants:read", "profile"),
        redirect_uris=(CALLBACK,),
    )
    return AuthenticatedClient(client=client, method="client_secret_basic")


@pytest.mark.parametrize("scope", ["openid", "profile", "openid restaurants:read", "email"])
async def test_client_credentials_refuses_openid_scopes_even_to_a_client_that_has_them(
    scope: str,
) -> None:
    grant = ClientCredentialsGrant(default_resource="https://api.example")
    with pytest.raises(InvalidScope):
        await grant.validate(client=mixed_client(), params={"scope": scope})


async def test_client_credentials_defaults_leave_the_openid_scopes_out() -> None:
    grant = ClientCredentialsGrant(default_resource="https://api.example")
    decision = await grant.validate(client=mixed_client(), params={})
    assert decision.scope == ("restaurants:read",)
    allowed = await grant.validate(client=mixed_client(), params={"scope": "restaurants:read"})
    assert allowed.scope == ("restaurants:read",)
