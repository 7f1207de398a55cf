"""The OpenAPI 3.1 document, built from the route declarations in :mod:`oauth_server.web.api`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

__all__ = ["Doc", "build_openapi"]

_REF = "#/components/schemas/{model}"


@dataclass(frozen=True)
class Doc:
    """What OpenAPI says about one operation."""

    summary: str
    tags: Sequence[str] = ()
    description: str | None = None
    request_body: Mapping[str, type[BaseModel]] | None = None
    """Media type → model of the request body."""
    responses: Mapping[int, tuple[str, type[BaseModel] | None]] = field(default_factory=dict)
    """Status → (description, model of the JSON body or None)."""
    parameters: Sequence[Mapping[str, Any]] = ()
    scopes: Sequence[str] | None = None
    """Scopes of which a bearer token must hold one; ``None`` when the route is not protected."""
    optional_auth: bool = False
    client_auth: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)


class _Operation(Protocol):
    method: str
    path: str
    doc: Doc
    name: str


def _models(operations: Iterable[_Operation]) -> list[type[BaseModel]]:
    seen: dict[str, type[BaseModel]] = {}
    for operation in operations:
        for model in (operation.doc.request_body or {}).values():
            seen[model.__name__] = model
        for _, response_model in operation.doc.responses.values():
            if response_model is not None:
                seen[response_model.__name__] = response_model
    return list(seen.values())


def build_openapi(
    operations: list[Any], *, title: str, version: str, token_url: str
) -> dict[str, Any]:
    models = _models(operations)
    refs, definitions = models_json_schema(
        [(model, "validation") for model in models], ref_template=_REF
    )
    ref_of = {model: refs[(model, "validation")] for model in models}
    paths: dict[str, dict[str, Any]] = {}
    for operation in operations:
        doc = operation.doc
        item: dict[str, Any] = {
            "operationId": operation.name,
            "summary": doc.summary,
            "tags": list(doc.tags),
            "responses": {
                str(status): _response(description, model, ref_of)
                for status, (description, model) in sorted(doc.responses.items())
            },
        }
        if doc.description:
            item["description"] = doc.description
        if doc.parameters:
            item["parameters"] = [dict(parameter) for parameter in doc.parameters]
        if doc.request_body:
            item["requestBody"] = {
                "required": True,
                "content": {
                    media: {"schema": ref_of[model]} for media, model in doc.request_body.items()
                },
            }
        security: list[dict[str, list[str]]] = []
        if doc.scopes is not None:
            security = [{"oauth2": [scope]} for scope in doc.scopes]
            if doc.optional_auth:
                security.append({})
        if doc.client_auth:
            security = [{"clientSecretBasic": []}, {}]
        if security:
            item["security"] = security
        item.update(doc.extra)
        paths.setdefault(operation.path, {})[operation.method] = item
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {
                "oauth2": {
                    "type": "oauth2",
                    "flows": {
                        "clientCredentials": {
                            "tokenUrl": token_url,
                            "scopes": {
                                "restaurent": "Read and update restaurants (seed scope)",
                                "restaurants:read": "Read full restaurant documents",
                                "restaurants:write": "Create, update and delete restaurants",
                                "admin": "The admin API (an admin client's; a user's token "
                                "only while the user is an admin)",
                            },
                        }
                    },
                },
                "clientSecretBasic": {"type": "http", "scheme": "basic"},
            },
        },
    }


def _response(
    description: str, model: type[BaseModel] | None, ref_of: dict[type[BaseModel], Any]
) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description}
    if model is not None:
        response["content"] = {"application/json": {"schema": ref_of[model]}}
    return response
