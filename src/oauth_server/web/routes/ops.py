"""Operations: liveness, readiness, the OpenAPI document and its browsable docs."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from oauth_server.errors import TemporarilyUnavailable
from oauth_server.web.api import Api
from oauth_server.web.state import services_of

__all__ = ["register"]

_DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>PythonOauthServer API</title>
<link rel="stylesheet" href="https://unpkg.com/swagger-ui-dist@5/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="https://unpkg.com/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui"});</script>
</body></html>"""


def register(api: Api) -> None:
    @api.route("/healthz", methods=["GET"])
    async def healthz(request: Request) -> Response:
        """Liveness: the process answers. Never touches the database."""
        return Response(b'{"status":"ok"}', media_type="application/json")

    @api.route("/readyz", methods=["GET"])
    async def readyz(request: Request) -> Response:
        """Readiness: the database answers."""
        try:
            await services_of(request).storage.ping()
        except Exception as exc:
            raise TemporarilyUnavailable("the database is unreachable", detail=str(exc)) from exc
        return Response(b'{"status":"ready"}', media_type="application/json")

    @api.route("/openapi.json", methods=["GET"])
    async def openapi(request: Request) -> Response:
        document = request.app.state.openapi
        return Response(orjson.dumps(document), media_type="application/json")

    @api.route("/docs", methods=["GET"])
    async def docs(request: Request) -> Response:
        return HTMLResponse(_DOCS_PAGE)
