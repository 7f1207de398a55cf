"""Discovery documents: RFC 8414 authorization-server metadata and RFC 9728 protected-resource
metadata. Only what is implemented is advertised."""

from __future__ import annotations

from typing import Any

from oauth_server.algorithms import SIGNING_ALGS
from oauth_server.oauth.client_auth import SUPPORTED_AUTH_METHODS
from oauth_server.oauth.clients import PUBLIC_CLIENT_GRANT_TYPES

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
    # `none`: a public client names itself by client_id (OAuth 2.1 §2.4) at the token endpoint
    # for the user grants, and at the revocation endpoint for its own tokens; introspection is
    # for confidential clients (resource servers) only.
    public = (
        [*auth_methods, "none"] if PUBLIC_CLIENT_GRANT_TYPES & set(grant_types) else auth_methods
    )
    return {
        # §2: the issuer is exactly the identifier that prefixes every endpoint and `iss`.
        "issuer": issuer,
        "token_endpoint": f"{issuer}/oauth/token",
        # §2: REQUIRED once a grant uses it (authorization_code); the authorization endpoint
        # is served at this path by the sign-in work (issue 9 item 3).
        **(
            {"authorization_endpoint": f"{issuer}/oauth/authorize"}
            if "authorization_code" in grant_types
            else {}
        ),
        "jwks_uri": f"{issuer}{JWKS_PATH}",
        "scopes_supported": scopes,
        # §2 makes this member REQUIRED; there is no authorization endpoint (yet), so no
        # response type is supported.
        "response_types_supported": [],
        "grant_types_supported": grant_types,
        "token_endpoint_auth_methods_supported": public,
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "revocation_endpoint_auth_methods_supported": public,
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
