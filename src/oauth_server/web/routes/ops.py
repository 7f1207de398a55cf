"""Operations: liveness, readiness, the OpenAPI document and its browsable docs."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

from swagger_ui_bundle import swagger_ui_path

from oauth_server.errors import NotFound, TemporarilyUnavailable
from oauth_server.oauth.http import Headers, OAuthResponse
from oauth_server.web.adapters import HTML_HEADERS
from oauth_server.web.api import Api, Call

__all__ = ["register"]

# /docs is Swagger UI from a packaged copy (the ``swagger-ui-bundle-v2`` wheel), served by this
# server: no third-party origin is contacted, and the page works on a closed network. The page
# runs no inline script, so its policy allows scripts from this origin only. Swagger UI sets
# inline styles and uses data: images in its stylesheet (swagger-ui issues #7540, #10655):
# those are allowed, for styles and images only.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
# validatorUrl: null keeps Swagger UI from loading a badge from its online validator.
_DOCS_INIT = b'SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui", validatorUrl: null});\n'
_ASSET_TYPES = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "docs.js": "text/javascript; charset=utf-8",
}
# The URLs carry a digest of the assets, so a browser may keep them for good.
_ASSET_CACHE = "public, max-age=31536000, immutable"


@dataclass(frozen=True, slots=True)
class DocsAssets:
    page: bytes
    files: dict[str, bytes]


@functools.cache
def docs_assets() -> DocsAssets:
    """The docs page and its assets, read from the installed package once per process."""
    files = {
        name: (swagger_ui_path / name).read_bytes() for name in _ASSET_TYPES if name != "docs.js"
    }
    files["docs.js"] = _DOCS_INIT
    digest = hashlib.sha256(b"".join(files[name] for name in sorted(files))).hexdigest()[:16]

    def url(name: str) -> str:
        return f"/docs/assets/{name}?v={digest}"

    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>PythonOauthServer API</title>
<link rel="stylesheet" href="{url("swagger-ui.css")}"></head>
<body><div id="ui"></div>
<script src="{url("swagger-ui-bundle.js")}"></script>
<script src="{url("docs.js")}"></script>
</body></html>"""
    return DocsAssets(page=page.encode("utf-8"), files=files)


_JSON = Headers.of({"Content-Type": "application/json"})


def register(api: Api, *, openapi: bytes) -> None:
    @api.route("/healthz", methods=["GET"])
    async def healthz(call: Call) -> OAuthResponse:
        """Liveness: the process answers. Never touches the database."""
        return OAuthResponse(200, b'{"status":"ok"}', _JSON)

    @api.route("/readyz", methods=["GET"])
    async def readyz(call: Call) -> OAuthResponse:
        """Readiness: the database answers."""
        try:
            await call.services.storage.ping()
        except Exception as exc:
            raise TemporarilyUnavailable("the database is unreachable", detail=str(exc)) from exc
        return OAuthResponse(200, b'{"status":"ready"}', _JSON)

    @api.route("/openapi.json", methods=["GET"])
    async def openapi_document(call: Call) -> OAuthResponse:
        return OAuthResponse(200, openapi, _JSON)

    assets = docs_assets()
    page_headers = Headers.of(
        {
            "Content-Type": "text/html; charset=utf-8",
            **HTML_HEADERS,
            "Content-Security-Policy": DOCS_CSP,
        }
    )

    @api.route("/docs", methods=["GET"])
    async def docs(call: Call) -> OAuthResponse:
        return OAuthResponse(200, assets.page, page_headers)

    @api.route("/docs/assets/{name}", methods=["GET"])
    async def docs_asset(call: Call) -> OAuthResponse:
        name = call.path_params["name"]
        body = assets.files.get(name)
        if body is None:
            raise NotFound("no such asset")
        return OAuthResponse(
            200, body, {"Content-Type": _ASSET_TYPES[name], "Cache-Control": _ASSET_CACHE}
        )
