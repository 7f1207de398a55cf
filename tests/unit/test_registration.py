"""The dynamic registration core (oauth/registration.py), framework-free: the document's
bounds, the metadata rules of RFC 7591 §2, and the policy. Table-driven: one metadata
document, the RFC 7591 §3.2.2 error it must get."""

from __future__ import annotations

import json
from typing import Any

import pytest

from oauth_server.clock import FrozenClock
from oauth_server.errors import (
    InvalidClientMetadataError,
    InvalidRedirectUriError,
    InvalidSoftwareStatement,
    RegistrationError,
    UnapprovedSoftwareStatement,
)
from oauth_server.oauth.initial_tokens import InitialAccessTokens
from oauth_server.oauth.registration import (
    MAX_DEPTH,
    MAX_DOCUMENT_BYTES,
    ClientMetadata,
    RegistrationPolicy,
    client_document,
    parse_document,
    read_metadata,
)
from oauth_server.storage import SqlStorage
from oauth_server.storage.models import Client, ClientRegistration

POLICY = RegistrationPolicy(
    grant_types=frozenset({"authorization_code", "refresh_token", "client_credentials"}),
    scopes=frozenset({"openid", "profile", "offline_access", "restaurants:read"}),
)
WEB = {"redirect_uris": ["https://app.example/cb"]}
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln"


def read(document: dict[str, Any], policy: RegistrationPolicy = POLICY) -> ClientMetadata:
    return read_metadata(parse_document(json.dumps(document).encode(), "application/json"), policy)


def test_defaults_of_rfc_7591_section_2() -> None:
    metadata = read(WEB)
    # "If omitted, the default behavior is that the client will use only the
    # authorization_code Grant Type"; "If unspecified or omitted, the default is
    # client_secret_basic"; response_types default to code.
    assert metadata.grant_types == ("authorization_code",)
    assert metadata.token_endpoint_auth_method == "client_secret_basic"
    assert metadata.response_types == ("code",)
    # Every scope of the policy the grants can use: not offline_access without refresh_token.
    assert metadata.scopes == ("openid", "profile", "restaurants:read")
    assert not metadata.public


def test_a_full_document_is_kept_and_unknown_members_are_ignored() -> None:
    metadata = read(
        {
            **WEB,
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "client_name": "My App",
            "client_uri": "https://app.example/",
            "logo_uri": "https://app.example/logo.png",
            "tos_uri": "https://app.example/tos",
            "policy_uri": "https://app.example/privacy",
            "contacts": ["ops@app.example"],
            "scope": "openid offline_access",
            "post_logout_redirect_uris": ["https://app.example/bye"],
            "software_id": "4NRB1-0XZABZI9E6-5SM3R",
            "software_version": "2.1",
            "client_name#ja-Jpan-JP": "アプリ",
            "x-unknown": {"deep": ["ignored"]},
        }
    )
    assert metadata.public
    assert metadata.scopes == ("openid", "offline_access")
    assert metadata.client_name == "My App"
    assert metadata.post_logout_redirect_uris == ("https://app.example/bye",)
    assert dict(metadata.extra) == {
        "client_uri": "https://app.example/",
        "logo_uri": "https://app.example/logo.png",
        "tos_uri": "https://app.example/tos",
        "policy_uri": "https://app.example/privacy",
        "contacts": ["ops@app.example"],
        "software_id": "4NRB1-0XZABZI9E6-5SM3R",
        "software_version": "2.1",
    }


def test_a_machine_client_needs_no_redirect_uri_nor_response_type() -> None:
    metadata = read({"grant_types": ["client_credentials"], "scope": "restaurants:read"})
    assert metadata.response_types == ()
    assert metadata.redirect_uris == ()
    assert metadata.scopes == ("restaurants:read",)


@pytest.mark.parametrize(
    ("body", "content_type", "fragment"),
    [
        (b"{}", "application/x-www-form-urlencoded", "application/json"),
        (b"not json", "application/json", "not valid JSON"),
        (b"[]", "application/json", "JSON object"),
        (b'{"a": 1, "a": 2}', "application/json", "repeated"),
        (b"[" * 5000 + b"]" * 5000, "application/json", "JSON"),
        (b'{"a": [[[[["deep"]]]]]}', "application/json", f"deeper than {MAX_DEPTH}"),
        (b'{"a": "' + b"x" * MAX_DOCUMENT_BYTES + b'"}', "application/json", "exceeds"),
    ],
)
def test_the_document_is_bounded(body: bytes, content_type: str, fragment: str) -> None:
    with pytest.raises(InvalidClientMetadataError) as caught:
        parse_document(body, content_type)
    assert fragment in (caught.value.description or "")


def test_the_deepest_supported_member_fits() -> None:
    assert parse_document(b'{"contacts": ["a@b.example"], "x": {"y": [1]}}', "application/json")


REDIRECT = "invalid_redirect_uri"
METADATA = "invalid_client_metadata"
CASES: list[tuple[str, dict[str, Any], str]] = [
    # redirect URIs (RFC 7591 §2: invalid_redirect_uri)
    ("code without redirect URI", {}, REDIRECT),
    ("redirect_uris not a list", {"redirect_uris": "https://a.example/cb"}, REDIRECT),
    ("fragment", {"redirect_uris": ["https://a.example/cb#x"]}, REDIRECT),
    ("plain http", {"redirect_uris": ["http://a.example/cb"]}, REDIRECT),
    ("javascript", {"redirect_uris": ["javascript:alert(1)"]}, REDIRECT),
    ("wildcard", {"redirect_uris": ["https://*.a.example/cb"]}, REDIRECT),
    ("userinfo", {"redirect_uris": ["https://a.example@evil.example/cb"]}, REDIRECT),
    ("twice", {"redirect_uris": ["https://a.example/cb", "https://a.example/cb"]}, REDIRECT),
    ("too many", {"redirect_uris": [f"https://a.example/{i}" for i in range(11)]}, REDIRECT),
    ("too long", {"redirect_uris": ["https://a.example/" + "x" * 2000]}, REDIRECT),
    (
        "redirect URI without the code grant",
        {"grant_types": ["client_credentials"], "redirect_uris": ["https://a.example/cb"]},
        REDIRECT,
    ),
    ("post-logout fragment", {**WEB, "post_logout_redirect_uris": ["https://a/#"]}, REDIRECT),
    # grant and response types (RFC 7591 §2, §2.1)
    ("unknown grant", {**WEB, "grant_types": ["password"]}, METADATA),
    ("implicit", {**WEB, "grant_types": ["implicit"], "response_types": ["token"]}, METADATA),
    ("empty grants", {**WEB, "grant_types": []}, METADATA),
    ("refresh alone", {"grant_types": ["refresh_token"]}, METADATA),
    ("token response type", {**WEB, "response_types": ["code", "token"]}, METADATA),
    (
        "code without grant",
        {"grant_types": ["client_credentials"], "response_types": ["code"]},
        METADATA,
    ),
    ("grant without code", {**WEB, "response_types": []}, METADATA),
    ("grants not strings", {**WEB, "grant_types": [1]}, METADATA),
    # authentication
    ("private_key_jwt", {**WEB, "token_endpoint_auth_method": "private_key_jwt"}, METADATA),
    ("jwks", {**WEB, "jwks": {"keys": []}}, METADATA),
    ("jwks_uri", {**WEB, "jwks_uri": "https://a.example/jwks"}, METADATA),
    (
        "public machine",
        {"grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"},
        METADATA,
    ),
    # scope
    ("scope outside the policy", {**WEB, "scope": "openid restaurants:write"}, METADATA),
    ("offline_access without refresh", {**WEB, "scope": "offline_access"}, METADATA),
    ("openid for a machine", {"grant_types": ["client_credentials"], "scope": "openid"}, METADATA),
    ("malformed scope", {**WEB, "scope": 'openid "x"'}, METADATA),
    ("scope not a string", {**WEB, "scope": ["openid"]}, METADATA),
    # text and URIs
    ("name too long", {**WEB, "client_name": "x" * 201}, METADATA),
    ("empty name", {**WEB, "client_name": ""}, METADATA),
    ("bidi override in the name", {**WEB, "client_name": "Good\u202eliveB"}, METADATA),
    ("zero-width space", {**WEB, "client_name": "Go\u200bogle"}, METADATA),
    ("control in the name", {**WEB, "client_name": "a\nb"}, METADATA),
    ("lone surrogate", {**WEB, "client_name": "\ud800"}, METADATA),
    ("name padded", {**WEB, "client_name": " App"}, METADATA),
    ("http client_uri", {**WEB, "client_uri": "http://app.example/"}, METADATA),
    ("javascript logo", {**WEB, "logo_uri": "javascript:alert(1)"}, METADATA),
    ("tos with spaces", {**WEB, "tos_uri": "https://a.example/ t"}, METADATA),
    ("contact not an address", {**WEB, "contacts": ["call me"]}, METADATA),
    ("too many contacts", {**WEB, "contacts": [f"{i}@a.example" for i in range(6)]}, METADATA),
    ("software_id too long", {**WEB, "software_id": "x" * 201}, METADATA),
    # software statements (RFC 7591 §2.3, §3.2.2)
    ("garbage statement", {**WEB, "software_statement": "not a jwt"}, "invalid_software_statement"),
    ("statement not a string", {**WEB, "software_statement": {}}, "invalid_software_statement"),
    ("well-formed statement", {**WEB, "software_statement": JWT}, "unapproved_software_statement"),
]


@pytest.mark.parametrize(("case", "document", "error"), CASES, ids=[c[0] for c in CASES])
def test_refusals(case: str, document: dict[str, Any], error: str) -> None:
    with pytest.raises(RegistrationError) as caught:
        read(document)
    assert caught.value.error == error, caught.value.description
    assert caught.value.status_code == 400


def test_error_classes_carry_the_rfc_7591_codes() -> None:
    assert InvalidRedirectUriError().error == "invalid_redirect_uri"
    assert InvalidClientMetadataError().error == "invalid_client_metadata"
    assert InvalidSoftwareStatement().error == "invalid_software_statement"
    assert UnapprovedSoftwareStatement().error == "unapproved_software_statement"


def test_policy_grant_types_and_auth_methods() -> None:
    narrow = RegistrationPolicy(
        grant_types=frozenset({"authorization_code"}), auth_methods=frozenset({"none"})
    )
    with pytest.raises(InvalidClientMetadataError, match="refresh_token is not allowed"):
        read(
            {
                **WEB,
                "grant_types": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_method": "none",
            },
            narrow,
        )
    with pytest.raises(InvalidClientMetadataError, match="client_secret_basic is not allowed"):
        read(WEB, narrow)
    assert read({**WEB, "token_endpoint_auth_method": "none"}, narrow).public


@pytest.mark.parametrize(
    ("uri", "schemes", "allowed"),
    [
        ("https://app.example/cb", {"https"}, True),
        ("http://127.0.0.1:8080/cb", {"https"}, False),
        ("http://127.0.0.1:8080/cb", {"http"}, True),
        ("com.example.app:/cb", {"https", "http"}, False),
        ("com.example.app:/cb", {"private-use"}, True),
        ("com.example.app:/cb", {"com.example.app"}, True),
        ("com.other.app:/cb", {"com.example.app"}, False),
    ],
)
def test_policy_redirect_uri_schemes(uri: str, schemes: set[str], allowed: bool) -> None:
    policy = RegistrationPolicy(redirect_uri_schemes=frozenset(schemes))
    document = {"redirect_uris": [uri], "token_endpoint_auth_method": "none"}
    if allowed:
        assert read(document, policy).redirect_uris == (uri,)
    else:
        with pytest.raises(InvalidRedirectUriError, match="scheme"):
            read(document, policy)


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("app.example.com", True),
        ("a.b.example.org", True),
        ("example.org", False),  # *.example.org is the hosts under it, not itself
        ("evilexample.org", False),
        ("app.example.com.evil.example", False),
        ("other.example.com", False),
        ("evil.example", False),
    ],
)
def test_policy_redirect_uri_hosts(host: str, allowed: bool) -> None:
    policy = RegistrationPolicy(redirect_uri_hosts=("app.example.com", "*.example.org"))
    document = {"redirect_uris": [f"https://{host}/cb"], "client_uri": "https://anything.example"}
    if allowed:
        assert read(document, policy).redirect_uris == (f"https://{host}/cb",)
    else:
        with pytest.raises(InvalidRedirectUriError, match="host"):
            read(document, policy)
    # Loopback redirect URIs are not hosts of the list: native apps keep working.
    assert read({"redirect_uris": ["http://127.0.0.1/cb"]}, policy).redirect_uris


def test_the_post_logout_redirect_uris_obey_the_policy_too() -> None:
    policy = RegistrationPolicy(redirect_uri_hosts=("app.example.com",))
    with pytest.raises(InvalidRedirectUriError, match="post_logout_redirect_uris"):
        read(
            {
                "redirect_uris": ["https://app.example.com/cb"],
                "post_logout_redirect_uris": ["https://evil.example/bye"],
            },
            policy,
        )


def test_client_document() -> None:
    client = Client(
        client_id="abc",
        secret_hash="sha256$x",
        name="App",
        grant_types=frozenset({"authorization_code", "refresh_token"}),
        scopes=frozenset({"openid", "offline_access"}),
        auth_methods=frozenset({"client_secret_post"}),
        redirect_uris=("https://a.example/cb",),
        created_at=1700,
    )
    document = client_document(
        client, {"logo_uri": "https://a.example/l.png", "other": "dropped"}, fields=[("x", 1)]
    )
    assert document == {
        "client_id": "abc",
        "client_id_issued_at": 1700,
        "client_secret_expires_at": 0,
        "token_endpoint_auth_method": "client_secret_post",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "redirect_uris": ["https://a.example/cb"],
        "scope": "offline_access openid",
        "client_name": "App",
        "logo_uri": "https://a.example/l.png",
        "x": 1,
    }
    public = Client(
        client_id="p",
        secret_hash=None,
        client_type="public",
        auth_methods=frozenset({"none"}),
        grant_types=frozenset({"client_credentials"}),
    )
    shown = client_document(public, {})
    assert shown["token_endpoint_auth_method"] == "none"
    assert "client_secret_expires_at" not in shown
    assert shown["response_types"] == []


def test_a_scope_outside_the_policy_is_named_as_such() -> None:
    with pytest.raises(InvalidClientMetadataError, match="not allowed for dynamically registered"):
        read({**WEB, "scope": "restaurants:write"})


async def test_initial_access_tokens_find_only_live_ones(sqlite_storage: SqlStorage) -> None:
    clock = FrozenClock(1_800_000_000)
    tokens = InitialAccessTokens(sqlite_storage.registrations, clock=clock)
    live = await tokens.create(max_clients=1, expires_in=60)
    assert await tokens.find(live.value) == live.token
    assert live.value not in repr(live.token)
    # A wrong secret part, a malformed value, an unknown id: all alike.
    wrong = live.value[:-2] + ("AA" if not live.value.endswith("AA") else "BA")
    for value in (wrong, "", "x" * 59, live.value + "A"):
        assert await tokens.find(value) is None
    revoked = await tokens.create(max_clients=1, expires_in=60)
    assert await tokens.revoke(revoked.token.token_id)
    assert not await tokens.revoke(revoked.token.token_id)
    assert not await tokens.revoke("not hex")
    assert await tokens.find(revoked.value) is None
    used = await tokens.create(max_clients=1, expires_in=60)
    now = int(clock.now())
    machine = Client(client_id="m", secret_hash="sha256$x", created_at=now, updated_at=now)
    registration = ClientRegistration(
        client_id="m", token_selector=bytes(12), token_hash=bytes(32), metadata="{}",
        created_at=now, updated_at=now, initial_token=used.token.selector,
    )  # fmt: skip
    assert await sqlite_storage.registrations.register(
        client=machine, registration=registration, now=now
    )
    assert await tokens.find(used.value) is None  # used up
    clock.advance(60)
    assert await tokens.find(live.value) is None  # expired
    with pytest.raises(ValueError, match="max clients"):
        await tokens.create(max_clients=0, expires_in=60)
    with pytest.raises(ValueError, match="lifetime"):
        await tokens.create(max_clients=1, expires_in=10)
