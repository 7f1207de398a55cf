"""Discovery documents: RFC 8414 authorization-server metadata and RFC 9728 protected-resource
metadata. Only what is implemented is advertised."""

from __future__ import annotations

from typing import Any

from oauth_server.algorithms import SIGNING_ALGS
from oauth_server.oauth.client_auth import SUPPORTED_AUTH_METHODS

__all__ = [
    "JWKS_PATH",
    "PROTECTED_RESOURCE_PATH",
    "authorization_server_metadata",
    "protected_resource_metadata",
]

JWKS_PATH = "/.well-known/jwks.json"
PROTECTED_RESOURCE_PATH = "/.well-known/oauth-protected-resource"


def authorization_server_metadata(
    *, issuer: str, grant_types: list[str], scopes: list[str]
) -> dict[str, Any]:
    auth_methods = list(SUPPORTED_AUTH_METHODS)
    return {
        # §2: the issuer is exactly the identifier that prefixes every endpoint and `iss`.
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": f"{issuer}/oauth/token",
        "jwks_uri": f"{issuer}{JWKS_PATH}",
        "scopes_supported": scopes,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        # RFC 7636 §4.2 / RFC 9700 §2.1.1: S256 only; "plain" is refused.
        "code_challenge_methods_supported": ["S256"],
        # RFC 9207 §3: every authorization response carries `iss`.
        "authorization_response_iss_parameter_supported": True,
        "grant_types_supported": grant_types,
        "token_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "service_documentation": f"{issuer}/docs",
        # Not registered by RFC 8414; it names what signs our JWT access tokens (RFC 9068).
        "access_token_signing_alg_values_supported": list(SIGNING_ALGS),
    }


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
