"""OpenAPI 3.1 for the gateway, generated from the ``Operation`` catalogue and pydantic models.

``build_spec`` is the single source of ``/openapi.json``: paths, parameters, request bodies,
responses (errors as ``ErrorBody``), security (a bearer JWT, and the issuer's OpenID Connect
discovery) with each operation's scopes. ``add_docs_routes`` serves it and Swagger UI.

The Swagger UI that ``swagger-ui-bundle`` ships (4.15) renders OpenAPI 3.0 only, so the page
loads ``/docs/openapi-3.0.json``, the same document translated by :func:`downgrade_to_30`.
"""

from __future__ import annotations

import copy
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

__all__ = ["OPENAPI_VERSION", "add_docs_routes", "build_spec", "downgrade_to_30"]

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


# -- OpenAPI 3.0 for Swagger UI 4 -----------------------------------------------------------


def _schema_30(node: Any) -> Any:
    """A JSON Schema 2020-12 node as an OpenAPI 3.0 schema object (the parts pydantic emits)."""
    if isinstance(node, list):
        return [_schema_30(item) for item in node]
    if not isinstance(node, dict):
        return node
    schema = {key: _schema_30(value) for key, value in node.items()}
    if "const" in schema:
        schema["enum"] = [schema.pop("const")]
    schema.pop("contentMediaType", None)
    schema.pop("contentEncoding", None)
    examples = schema.pop("examples", None)
    if isinstance(examples, list) and examples:
        schema["example"] = examples[0]
    for bound, strict in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if isinstance(schema.get(strict), int | float) and not isinstance(schema[strict], bool):
            schema[bound] = schema.pop(strict)
            schema[strict] = True
    kind = schema.get("type")
    if isinstance(kind, list):
        rest = [k for k in kind if k != "null"]
        if len(rest) < len(kind):
            schema["nullable"] = True
        if len(rest) == 1:
            schema["type"] = rest[0]
        else:
            del schema["type"]
            schema["anyOf"] = [{"type": k} for k in rest]
    for combiner in ("anyOf", "oneOf"):
        options = schema.get(combiner)
        if not isinstance(options, list):
            continue
        rest = [o for o in options if o != {"type": "null"}]
        if len(rest) == len(options):
            continue
        schema["nullable"] = True
        if len(rest) == 1:
            del schema[combiner]
            only = rest[0]
            if "$ref" in only:
                schema["allOf"] = [only]  # 3.0 ignores siblings of $ref
            else:
                schema.update({k: v for k, v in only.items() if k not in schema})
        else:
            schema[combiner] = rest
    if "$ref" in schema and len(schema) > 1:
        schema = {k: v for k, v in schema.items() if k != "$ref"} | {
            "allOf": [{"$ref": schema["$ref"]}]
        }
    return schema


def downgrade_to_30(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The same API as OpenAPI 3.0.3, for Swagger UI versions that cannot read 3.1."""
    result = copy.deepcopy(dict(spec))
    result["openapi"] = "3.0.3"
    components = result.get("components", {})
    components["schemas"] = {
        name: _schema_30(schema) for name, schema in components.get("schemas", {}).items()
    }
    for item in result.get("paths", {}).values():
        for operation in item.values():
            for param in operation.get("parameters", []):
                param["schema"] = _schema_30(param["schema"])
            for holder in [operation.get("requestBody", {}), *operation["responses"].values()]:
                for media in holder.get("content", {}).values():
                    media["schema"] = _schema_30(media["schema"])
            # 3.0 allows scopes only for OAuth2 and OpenID Connect schemes.
            operation["security"] = [
                {name: (scopes if name == OIDC_SCHEME else []) for name, scopes in req.items()}
                for req in operation.get("security", [])
            ]
    return result


# -- serving --------------------------------------------------------------------------------


def add_docs_routes(app: web.Application, operations: Iterable[Operation]) -> None:
    """Serve ``GET /openapi.json`` (3.1), and Swagger UI at ``GET /docs`` with its assets."""
    settings = app.get(SETTINGS_KEY)
    issuer = settings.issuer_url if settings is not None else None
    spec = build_spec([*operations, *DOCS_OPERATIONS], issuer=issuer)
    add_swagger_ui(
        app,
        openapi_31=_encode(spec),
        openapi_30=_encode(downgrade_to_30(spec)),
        issuer=issuer,
    )


def _encode(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
