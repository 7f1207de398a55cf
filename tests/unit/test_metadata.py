"""The one metadata builder (RFC 8414 = OpenID Provider metadata, Discovery 1.0 §3): what it
advertises follows what is served."""

from __future__ import annotations

from oauth_server.algorithms import SIGNING_ALGS
from oauth_server.oauth.endpoints.metadata import authorization_server_metadata

ISSUER = "https://as.example"
SCOPES = ["openid", "profile", "email", "offline_access", "restaurants:read"]


def test_with_the_authorization_code_grant() -> None:
    document = authorization_server_metadata(
        issuer=ISSUER,
        grant_types=["refresh_token", "authorization_code", "client_credentials"],
        scopes=SCOPES,
    )
    assert document["authorization_endpoint"] == f"{ISSUER}/oauth/authorize"
    assert document["response_types_supported"] == ["code"]
    assert document["response_modes_supported"] == ["query", "form_post"]
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert document["authorization_response_iss_parameter_supported"] is True
    assert document["grant_types_supported"] == [
        "authorization_code",
        "client_credentials",
        "refresh_token",
    ]
    assert document["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
        "none",
    ]
    # Public clients revoke their own tokens (RFC 7009 §2.1) and are never resource servers.
    assert "none" not in document["introspection_endpoint_auth_methods_supported"]
    assert "none" in document["revocation_endpoint_auth_methods_supported"]
    assert document["id_token_signing_alg_values_supported"] == list(SIGNING_ALGS)
    assert document["subject_types_supported"] == ["public"]
    assert document["userinfo_endpoint"] == f"{ISSUER}/oauth/userinfo"
    assert document["end_session_endpoint"] == f"{ISSUER}/oauth/logout"
    assert "registration_endpoint" not in document


def test_without_it_nothing_of_the_authorization_endpoint_is_advertised() -> None:
    document = authorization_server_metadata(
        issuer=ISSUER, grant_types=["client_credentials"], scopes=SCOPES
    )
    for absent in (
        "authorization_endpoint",
        "response_modes_supported",
        "code_challenge_methods_supported",
        "authorization_response_iss_parameter_supported",
        "end_session_endpoint",
    ):
        assert absent not in document
    assert document["response_types_supported"] == []
    assert "none" not in document["token_endpoint_auth_methods_supported"]
