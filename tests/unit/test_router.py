"""FastRouter: exact paths, several whole-segment path parameters, 405 with Allow."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from oauth_server.oauth.http import OAuthResponse
from oauth_server.web.api import Api, Call, FastRouter


async def _ok(call: Call) -> OAuthResponse:
    return OAuthResponse(200, b"")


def _router(*paths: str) -> FastRouter:
    api = Api()
    for path in paths:
        api.route(path, methods=["GET"])(_ok)
    return FastRouter(SimpleNamespace(state=SimpleNamespace()), api=api, max_body_bytes=1024)


ROUTER = _router(
    "/healthz",
    "/api/restaurants",
    "/api/restaurants/{restaurant_id}",
    "/admin/api/users/{user_id}/sessions/{session_id}",
    "/admin/api/users/{user_id}/sessions",
    "/admin/api/users/{user_id}/sessions/current",
    "/docs/assets/{name}",
)


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/healthz", {}),
        ("/api/restaurants", {}),
        ("/api/restaurants/abc", {"restaurant_id": "abc"}),
        ("/admin/api/users/u1/sessions", {"user_id": "u1"}),
        ("/admin/api/users/u1/sessions/s9", {"user_id": "u1", "session_id": "s9"}),
        # A literal segment wins over a parameter in the same place.
        ("/admin/api/users/u1/sessions/current", {"user_id": "u1"}),
        ("/docs/assets/swagger-ui.css", {"name": "swagger-ui.css"}),
    ],
)
def test_paths_match_with_their_parameters(path: str, params: dict[str, str]) -> None:
    matched = ROUTER.match(path)
    assert matched is not None
    assert matched[1] == params


@pytest.mark.parametrize(
    "path",
    [
        "/api/restaurants/",  # an empty parameter
        "/api/restaurants/a/b",  # a parameter is one segment
        "/admin/api/users//sessions/s9",
        "/admin/api/users/u1/sessions/s9/extra",
        "/admin/api/users/u1/other/s9",
        "/healthz/",
        "/nothing",
        "",
    ],
)
def test_other_paths_do_not_match(path: str) -> None:
    assert ROUTER.match(path) is None


def test_exact_paths_are_a_dict_lookup() -> None:
    # No template is consulted for an exact path: it is in the exact table.
    assert "/healthz" in ROUTER._exact
    assert all("{" not in path for path in ROUTER._exact)


@pytest.mark.parametrize(
    "path",
    ["/a/{x}{y}", "/a/x{y}", "/a/{x}/{x}", "/a/{1x}", "/a/{x"],
)
def test_malformed_templates_are_refused(path: str) -> None:
    with pytest.raises(ValueError, match="parameter"):
        _router(path)


def test_templates_differing_only_in_parameter_names_are_refused() -> None:
    with pytest.raises(ValueError, match="parameter names"):
        _router("/a/{x}", "/a/{y}")


async def test_a_wrong_method_is_405_with_allow() -> None:
    router = _router("/a/{x}/b/{y}")
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        sent.append(message)

    scope: dict[str, Any] = {
        "type": "http",
        "method": "DELETE",
        "path": "/a/1/b/2",
        "headers": [],
        "query_string": b"",
    }
    await router(scope, receive, send)
    assert sent[0]["status"] == 405
    assert (b"allow", b"GET, HEAD") in sent[0]["headers"]
