"""Discovery documents: authorization-server metadata (RFC 8414), which is also the OpenID
Provider metadata (OpenID Connect Discovery 1.0 §3), and RFC 9728 protected-resource metadata.
Only what is implemented is advertised.

One builder serves ``/.well-known/oauth-authorization-server`` and
``/.well-known/openid-configuration`` the same document: RFC 8414 §1 defines its metadata as
compatible with OIDC Discovery's, and two documents that could disagree about one server would
let a client configured from either fail on the other.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from oauth_server.algorithms import SIGNING_ALGS
from oauth_server.oauth.client_auth import SUPPORTED_AUTH_METHODS
from oauth_server.oauth.clients import PUBLIC_CLIENT_GRANT_TYPES

__all__ = [
    "AUTHORIZATION_PATH",
    "END_SESSION_PATH",
    "ID_TOKEN_CLAIMS",
    "JWKS_PATH",
    "PROTECTED_RESOURCE_PATH",
    "USERINFO_PATH",
    "authorization_server_metadata",
    "protected_resource_metadata",
]

JWKS_PATH = "/.well-known/jwks.json"
PROTECTED_RESOURCE_PATH = "/.well-known/oauth-protected-resource"
AUTHORIZATION_PATH = "/oauth/authorize"
USERINFO_PATH = "/oauth/userinfo"
END_SESSION_PATH = "/oauth/logout"
ID_TOKEN_CLAIMS = (
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "at_hash",
    "sid",
    "azp",
    "amr",
    "name",
    "given_name",
    "family_name",
    "preferred_username",
    "updated_at",
    "email",
    "email_verified",
)
"""The claims this server can return in ID tokens or from userinfo (Discovery §3
``claims_supported``)."""


def authorization_server_metadata(
    *,
    issuer: str,
    grant_types: Iterable[str],
    scopes: Iterable[str],
    registration_endpoint: str | None = None,
) -> dict[str, Any]:
    grants = sorted(grant_types)
    auth_methods = list(SUPPORTED_AUTH_METHODS)
    sign_in = "authorization_code" in grants
    # `none`: a public client names itself by client_id (OAuth 2.1 §2.4) at the token endpoint
    # for the user grants, and at the revocation endpoint for its own tokens; introspection is
    # for confidential clients (resource servers) only.
    token_auth_methods = (
        [*auth_methods, "none"] if PUBLIC_CLIENT_GRANT_TYPES & set(grants) else auth_methods
    )
    algs = list(SIGNING_ALGS)
    document: dict[str, Any] = {
        # RFC 8414 §2 / Discovery §3: the issuer is exactly the identifier that prefixes every
        # endpoint and is every token's `iss`.
        "issuer": issuer,
    }
    if sign_in:
        document["authorization_endpoint"] = f"{issuer}{AUTHORIZATION_PATH}"
    document |= {
        "token_endpoint": f"{issuer}/oauth/token",
        "userinfo_endpoint": f"{issuer}{USERINFO_PATH}",
        "jwks_uri": f"{issuer}{JWKS_PATH}",
        "scopes_supported": sorted(scopes),
        # RFC 8414 §2 makes this REQUIRED: `code` once the authorization endpoint is served,
        # nothing before (no response type exists without it).
        "response_types_supported": ["code"] if sign_in else [],
        "grant_types_supported": grants,
        # Discovery §3: REQUIRED. Every client sees a user's one stable id (OIDC Core §8).
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algs,
        "token_endpoint_auth_methods_supported": token_auth_methods,
        "claims_supported": list(ID_TOKEN_CLAIMS),
        # Discovery §3: request objects and the `claims` parameter are not supported; their
        # defaults differ (request_uri_parameter_supported defaults to true), so say so.
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "claims_parameter_supported": False,
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "revocation_endpoint_auth_methods_supported": token_auth_methods,
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "service_documentation": f"{issuer}/docs",
        # Not registered by RFC 8414; it names what signs our JWT access tokens (RFC 9068).
        "access_token_signing_alg_values_supported": algs,
    }
    if registration_endpoint is not None:
        # RFC 8414 §2 / RFC 7591 §3: only when dynamic registration is enabled.
        document["registration_endpoint"] = registration_endpoint
    if sign_in:
        document |= {
            "response_modes_supported": ["query", "form_post"],
            # RFC 7636 §4.2: S256 only; `plain` is refused.
            "code_challenge_methods_supported": ["S256"],
            # RFC 9207 §3: `iss` is in every authorization response.
            "authorization_response_iss_parameter_supported": True,
            # RP-Initiated Logout 1.0 §2.1: "URL at the OP to which an RP can perform a
            # redirect to request that the End-User be logged out at the OP".
            "end_session_endpoint": f"{issuer}{END_SESSION_PATH}",
        }
    return document


def protected_resource_metadata(
    *, resource: str, issuer: str, scopes: list[str], name: str
) -> dict[str, Any]:
    return {
        "resource": resource,
        "authorization_servers": [issuer],
        "scopes_supported": scopes,
        "bearer_methods_supported": ["header"],
        "resource_name": name,
        "resource_documentation": f"{issuer}/docs",
    }
