"""Operations: liveness, readiness, the OpenAPI document and its browsable docs."""

from __future__ import annotations

from oauth_server.errors import TemporarilyUnavailable
from oauth_server.oauth.http import OAuthResponse
from oauth_server.web.api import HTML_HEADERS, Api, Call

__all__ = ["register"]

_DOCS_PAGE = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>PythonOauthServer API</title>
<link rel="stylesheet" href="https://unpkg.com/swagger-ui-dist@5/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="https://unpkg.com/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui"});</script>
</body></html>"""
_JSON = {"Content-Type": "application/json"}


def register(api: Api, *, openapi: bytes) -> None:
    @api.route("/healthz", methods=["GET"])
    async def healthz(call: Call) -> OAuthResponse:
        """Liveness: the process answers. Never touches the database."""
        return OAuthResponse(200, b'{"status":"ok"}', dict(_JSON))

    @api.route("/readyz", methods=["GET"])
    async def readyz(call: Call) -> OAuthResponse:
        """Readiness: the database answers."""
        try:
            await call.services.storage.ping()
        except Exception as exc:
            raise TemporarilyUnavailable("the database is unreachable", detail=str(exc)) from exc
        return OAuthResponse(200, b'{"status":"ready"}', dict(_JSON))

    @api.route("/openapi.json", methods=["GET"])
    async def openapi_document(call: Call) -> OAuthResponse:
        return OAuthResponse(200, openapi, dict(_JSON))

    @api.route("/docs", methods=["GET"])
    async def docs(call: Call) -> OAuthResponse:
        return OAuthResponse(
            200, _DOCS_PAGE, {"Content-Type": "text/html; charset=utf-8", **HTML_HEADERS}
        )
