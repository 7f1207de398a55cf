"""/docs: Swagger UI served by the server itself, under a Content-Security-Policy that allows no
third-party origin and no inline script."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
from swagger_ui_bundle import swagger_ui_path

_URL_ATTRIBUTE = re.compile(rb"""(?:src|href)\s*=\s*["']([^"']*)["']""", re.IGNORECASE)
_SCRIPT = re.compile(rb"<script([^>]*)>(.*?)</script>", re.IGNORECASE | re.DOTALL)


def _directives(policy: str) -> dict[str, list[str]]:
    parsed = (part.split() for part in policy.split(";") if part.strip())
    return {words[0]: words[1:] for words in parsed}


async def test_docs_page_loads_only_same_origin_assets(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    urls = [match.decode() for match in _URL_ATTRIBUTE.findall(page.content)]
    assert len(urls) == 3  # the stylesheet, Swagger UI, and the script that starts it
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme, url  # same origin: a path, no scheme or host
        assert not parts.netloc, url
        assert parts.path.startswith("/docs/assets/"), url
    # No inline script: everything that runs comes from a URL the policy allows.
    scripts = _SCRIPT.findall(page.content)
    assert scripts
    assert all(b"src=" in attributes and not body.strip() for attributes, body in scripts)

    expected = {
        "/docs/assets/swagger-ui.css": ("text/css", (swagger_ui_path / "swagger-ui.css")),
        "/docs/assets/swagger-ui-bundle.js": (
            "text/javascript",
            (swagger_ui_path / "swagger-ui-bundle.js"),
        ),
    }
    for url in urls:
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert "immutable" in asset.headers["cache-control"]
        assert asset.headers["x-content-type-options"] == "nosniff"
        path = urlsplit(url).path
        if path in expected:
            content_type, source = expected[path]
            assert asset.headers["content-type"].startswith(content_type)
            assert asset.content == source.read_bytes()
        else:
            assert asset.headers["content-type"].startswith("text/javascript")
            assert b"SwaggerUIBundle(" in asset.content
            assert b"/openapi.json" in asset.content
            assert b"validatorUrl: null" in asset.content  # no badge from the online validator


async def test_docs_page_has_a_strict_content_security_policy(client: httpx.AsyncClient) -> None:
    policy = _directives((await client.get("/docs")).headers["content-security-policy"])
    assert policy["default-src"] == ["'none'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["connect-src"] == ["'self'"]  # the OpenAPI document and "try it out"
    for directive, sources in policy.items():
        for source in sources:
            # Keywords and data: (images, styles) only: no host, no scheme-wide wildcard.
            assert source.startswith("'") or source == "data:", (directive, source)
            assert source not in ("'unsafe-eval'", "'strict-dynamic'"), (directive, source)
    assert "'unsafe-inline'" not in policy["script-src"]


async def test_docs_assets_are_an_allowlist(client: httpx.AsyncClient) -> None:
    for path in (
        "/docs/assets/index.html",
        "/docs/assets/swagger-ui.js.map",
        "/docs/assets/..%2Fpy.typed",
        "/docs/assets/",
    ):
        assert (await client.get(path)).status_code == 404, path
