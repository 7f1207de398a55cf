"""Security headers and CORS through the ASGI app."""

from __future__ import annotations

import httpx
import pytest

from oauth_server.config import Settings
from oauth_server.web.app import create_app
from tests.conftest import lifespan


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/restaurent"),
        ("POST", "/oauth/token"),
        ("GET", "/nope"),
        ("GET", "/docs"),
        ("GET", "/.well-known/jwks.json"),
        ("PUT", "/restaurent"),
    ],
)
async def test_every_response_carries_the_security_headers(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await client.request(method, path)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "strict-transport-security" not in response.headers


async def test_rendered_pages_cannot_be_framed(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["referrer-policy"] == "no-referrer"


async def test_hsts_with_an_https_issuer(database_url: str) -> None:
    settings = Settings(
        database_url=database_url,
        issuer="https://auth.example",
        secret_key="hsts-test-secret-key-0123456789-abcdef",
    )
    app = create_app(settings)
    async with lifespan(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.get("/healthz")
    assert response.headers["strict-transport-security"].startswith("max-age=")


@pytest.mark.parametrize(
    "path",
    [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
        "/.well-known/jwks.json",
        "/.well-known/oauth-protected-resource",
    ],
)
async def test_public_documents_allow_any_origin(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path, headers={"Origin": "https://spa.example"})
    assert response.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/oauth/token"),
        ("POST", "/oauth/introspect"),
        ("POST", "/oauth/revoke"),
        ("GET", "/restaurent"),
        ("GET", "/api/restaurants"),
    ],
)
async def test_no_cors_elsewhere(client: httpx.AsyncClient, method: str, path: str) -> None:
    response = await client.request(method, path, headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in response.headers
