"""OpenAPI 3.1 for the gateway, generated from the ``Operation`` catalogue and pydantic models.

``build_spec`` is the single source of ``/openapi.json``: paths, parameters, request bodies,
responses (errors as ``ErrorBody``), security (a bearer JWT, and the issuer's OpenID Connect
discovery) with each operation's scopes. ``add_docs_routes`` serves it and Swagger UI 5, which
renders OpenAPI 3.1 as it is.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any, Final

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from gateway.appkeys import SETTINGS_KEY
from gateway.docs import DOCS_OPERATIONS, add_swagger_ui
from gateway.operations import Operation
from gateway.settings import GatewaySettings

__all__ = ["OPENAPI_VERSION", "add_docs_routes", "build_spec"]

OPENAPI_VERSION: Final = "3.1.0"
BEARER_SCHEME: Final = "bearerAuth"
OIDC_SCHEME: Final = "openIdConnect"
_COMPONENTS: Final = "#/components/schemas/{model}"
_METHODS_WITH_BODY: Final = frozenset({"POST", "PUT", "PATCH"})


def _models(operations: Sequence[Operation]) -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    """Every model the operations name: request bodies for validation, responses as sent."""
    seen: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {}
    for op in operations:
        if isinstance(op.request, type):
            seen[(op.request, "validation")] = None
        for model in op.responses.values():
            if model is not None:
                seen[(model, "serialization")] = None
    return list(seen)


def _components(
    operations: Sequence[Operation],
) -> tuple[dict[Any, dict[str, Any]], dict[str, Any]]:
    """The ``$ref`` of each model and ``components.schemas`` with every ``$defs`` hoisted."""
    models = _models(operations)
    if not models:
        return {}, {}
    refs, definitions = models_json_schema(models, ref_template=_COMPONENTS)
    return dict(refs), dict(definitions.get("$defs", {}))


def _security(op: Operation, oidc: bool) -> list[dict[str, list[str]]]:
    if op.auth == "none":
        return []
    schemes = [BEARER_SCHEME, OIDC_SCHEME] if oidc else [BEARER_SCHEME]
    requirements: list[dict[str, list[str]]] = [{name: list(op.scopes)} for name in schemes]
    if op.auth == "optional":
        requirements.insert(0, {})  # anonymous callers are answered too, with less
    return requirements


def _parameter(op: Operation, index: int) -> dict[str, Any]:
    param = op.parameters[index]
    schema = dict(param.schema)
    spec: dict[str, Any] = {
        "name": param.name,
        "in": param.location,
        "description": param.description,
        "required": True if param.location == "path" else param.required,
        "schema": schema,
    }
    if schema.get("type") == "array":
        spec["style"] = "form"
        spec["explode"] = True
    return spec


def _multipart() -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "array",
                            "minItems": 1,
                            "items": {
                                "type": "string",
                                "format": "binary",
                                "contentMediaType": "application/octet-stream",
                            },
                            "description": "One part named `file` per document.",
                        }
                    },
                },
                "encoding": {"file": {"contentType": "*/*"}},
            }
        },
    }


def _response(
    op: Operation, status: int, model: type[BaseModel] | None, refs: Mapping[Any, Any]
) -> dict[str, Any]:
    description = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
    response: dict[str, Any] = {"description": description or str(status)}
    if model is None:
        return response
    schema = dict(refs[(model, "serialization")])
    if status < 300 and op.content_type == "text/event-stream":
        response["description"] += f"; each `data:` is a {model.__name__} as JSON"
        response["content"] = {"text/event-stream": {"schema": {"type": "string"}}}
    elif status < 300:
        response["content"] = {op.content_type: {"schema": schema}}
    else:
        response["content"] = {"application/json": {"schema": schema}}
    return response


def _operation(op: Operation, refs: Mapping[Any, Any], oidc: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
        "security": _security(op, oidc),
    }
    if op.description:
        spec["description"] = op.description
    if op.scopes:
        spec["x-required-scopes"] = list(op.scopes)
    if op.roles:
        spec["x-required-roles"] = list(op.roles)
    if op.parameters:
        spec["parameters"] = [_parameter(op, i) for i in range(len(op.parameters))]
    if op.request == "multipart":
        spec["requestBody"] = _multipart()
    elif op.request is not None:
        spec["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": dict(refs[(op.request, "validation")])}},
        }
    responses = dict(op.responses)
    error_body = _error_model(op, responses)
    # What the route's guard can always answer, documented even when the catalogue omits it.
    if op.auth != "none" and error_body is not None:
        responses.setdefault(401, error_body)
        if op.scopes or op.roles:
            responses.setdefault(403, error_body)
    if not responses:
        responses[200] = None
    spec["responses"] = {
        str(status): _response(op, status, model, refs)
        for status, model in sorted(responses.items())
    }
    return spec


def _error_model(op: Operation, responses: Mapping[int, type[BaseModel] | None]) -> Any:
    for status, model in responses.items():
        if status >= 400 and model is not None:
            return model
    return None


def build_spec(
    operations: Iterable[Operation],
    *,
    issuer: str | None = None,
    title: str = "Sealflow gateway",
    version: str = "0.1.0",
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``operations``; ``issuer`` adds its OIDC discovery URL."""
    ops = list(operations)
    seen: set[tuple[str, str]] = set()
    for op in ops:
        key = (op.method, op.path)
        if key in seen:
            raise ValueError(f"{op.method} {op.path} is declared twice")
        seen.add(key)
    refs, schemas = _components(ops)
    oidc = issuer is not None
    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, refs, oidc)
    security_schemes: dict[str, Any] = {
        BEARER_SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "An access token (`typ: at+jwt`) from the identity provider; "
            "`sealflow token` prints one.",
        }
    }
    if issuer is not None:
        security_schemes[OIDC_SCHEME] = {
            "type": "openIdConnect",
            "openIdConnectUrl": issuer.rstrip("/") + "/.well-known/openid-configuration",
        }
    tags = sorted({op.tag for op in ops})
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": title,
            "version": version,
            "description": "Upload documents as sealed jobs, follow them, read and search "
            "their text. Every route under `/api` except health and status needs a bearer "
            "access token with the scopes listed on it.",
        },
        "tags": [{"name": tag} for tag in tags],
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": security_schemes},
    }


# -- serving --------------------------------------------------------------------------------


def add_docs_routes(app: web.Application, operations: Iterable[Operation]) -> None:
    """Serve ``GET /openapi.json`` (3.1), and Swagger UI at ``GET /docs`` with its assets."""
    settings = app.get(SETTINGS_KEY)
    issuer = settings.issuer_url if settings is not None else None
    spec = build_spec([*operations, *DOCS_OPERATIONS], issuer=issuer)
    assets = (settings if settings is not None else GatewaySettings()).swagger_ui_dir
    add_swagger_ui(app, openapi_31=_encode(spec), issuer=issuer, assets=assets)


def _encode(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
