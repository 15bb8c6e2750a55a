"""The OpenAPI document, Swagger UI at /docs, and a schemathesis run against the gateway."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from gateway_testing import Gateway
from openapi_spec_validator.validation import OpenAPIV31SpecValidator

from broker import BrokerSettings
from gateway import GatewaySettings, all_operations, create_app
from gateway.docs import DOCS_OPERATIONS, STATIC_FILES
from gateway.errors import error_middleware
from gateway.openapi import add_docs_routes, build_spec

ISSUER = "http://127.0.0.1:8081"


def _spec() -> dict[str, Any]:
    return build_spec([*all_operations(), *DOCS_OPERATIONS], issuer=ISSUER)


def _errors(validator: Any) -> list[str]:
    """Validation errors, less ``pattern`` values that use ECMAScript's ``\\p{..}`` classes.

    JSON Schema patterns are ECMA-262 regexes; the validator checks them with Python's ``re``,
    which has no Unicode property classes. Those are checked with an ECMA engine below.
    """
    return [
        error.message
        for error in validator.iter_errors()
        if not (error.validator == "format" and "\\p{" in str(error.instance))
    ]


def _patterns(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["pattern"]] if isinstance(node.get("pattern"), str) else []
        return found + [p for value in node.values() for p in _patterns(value)]
    if isinstance(node, list):
        return [p for value in node for p in _patterns(value)]
    return []


def test_the_spec_is_valid_openapi_3_1() -> None:
    spec = _spec()
    assert spec["openapi"] == "3.1.0"
    assert _errors(OpenAPIV31SpecValidator(spec)) == []
    for pattern in set(_patterns(spec)):
        jsonschema_rs.validator_for({"type": "string", "pattern": pattern})  # ECMA-262 regex


def test_components_hoist_every_model_and_refs_point_at_them() -> None:
    spec = _spec()
    schemas = spec["components"]["schemas"]
    assert {"ErrorBody", "JobView", "JobDetail", "DeadLetterList", "AuditRecordList"} <= set(
        schemas
    )
    assert "AuditEvent" in schemas  # nested models are hoisted, not left in $defs
    text = repr(spec)
    assert "$defs" not in text
    for ref in re.findall(r"'\$ref': '([^']+)'", text):
        assert ref.startswith("#/components/schemas/")
        assert ref.rsplit("/", 1)[1] in schemas


def test_security_schemes_and_per_operation_scopes() -> None:
    spec = _spec()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": schemes["bearerAuth"]["description"],
    }
    assert schemes["openIdConnect"] == {
        "type": "openIdConnect",
        "openIdConnectUrl": f"{ISSUER}/.well-known/openid-configuration",
    }
    paths = spec["paths"]
    assert paths["/api/health"]["get"]["security"] == []
    assert {} in paths["/api/status"]["get"]["security"]  # optional: anonymous allowed
    upload = paths["/api/jobs"]["post"]
    assert {"bearerAuth": ["jobs:write"]} in upload["security"]
    replay = paths["/api/dlq/{letter_id}/replay"]["post"]
    assert replay["x-required-roles"] == ["admin"]
    assert {"bearerAuth": ["jobs:admin"]} in replay["security"]
    assert paths["/api/audit"]["get"]["x-required-scopes"] == ["audit:read"]


def test_upload_is_multipart_with_an_array_of_binary_files_and_errors_use_error_body() -> None:
    upload = _spec()["paths"]["/api/jobs"]["post"]
    schema = upload["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert schema["required"] == ["file"]
    assert schema["properties"]["file"]["type"] == "array"
    assert schema["properties"]["file"]["items"]["format"] == "binary"
    for status in ("400", "401", "403", "413", "415", "503"):
        media = upload["responses"][status]["content"]["application/json"]
        assert media["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
    assert upload["responses"]["202"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/UploadAccepted"
    }


def test_path_parameters_are_declared_and_required() -> None:
    for path, item in _spec()["paths"].items():
        names = re.findall(r"{([^}]+)}", path)
        for operation in item.values():
            declared = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "path"}
            assert sorted(declared) == sorted(names), path
            assert all(p["required"] for p in declared.values())


def test_an_operation_declared_twice_is_refused() -> None:
    health = next(op for op in all_operations() if op.path == "/api/health")
    with pytest.raises(ValueError, match="declared twice"):
        build_spec([health, health])


def test_every_route_of_the_app_is_in_the_spec_and_vice_versa(
    keys_dir: Path, tmp_path: Path
) -> None:
    settings = GatewaySettings(issuer=ISSUER, data_dir=tmp_path, keys_dir=keys_dir)
    app = create_app(settings, broker_settings=BrokerSettings(data_dir=tmp_path, keys_dir=keys_dir))
    # The JSON API and its docs; the browser pages (HTML, session cookie: ``gateway.web``)
    # are not part of the API document.
    routes = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
        and route.method != "HEAD"
        and (
            route.resource.canonical.startswith(("/api/", "/docs"))
            or route.resource.canonical == "/openapi.json"
        )
    }
    spec = build_spec([*all_operations(), *DOCS_OPERATIONS], issuer=ISSUER)
    documented = {(method.upper(), path) for path, item in spec["paths"].items() for method in item}
    assert routes == documented


@pytest.fixture
async def docs_client() -> Any:
    app = web.Application(middlewares=[error_middleware])
    add_docs_routes(app, all_operations())
    async with TestClient(TestServer(app)) as client:
        yield client


async def test_openapi_json_is_served(docs_client: TestClient) -> None:
    response = await docs_client.get("/openapi.json")
    assert response.status == 200
    assert response.content_type == "application/json"
    body = await response.json()
    assert body["openapi"] == "3.1.0"
    assert "/api/dlq" in body["paths"]
    assert "openIdConnect" not in body["components"]["securitySchemes"]  # no settings, no issuer


async def test_docs_page_loads_the_bundle_and_an_init_script_without_inline_script(
    docs_client: TestClient,
) -> None:
    response = await docs_client.get("/docs")
    assert response.status == 200
    assert response.content_type == "text/html"
    page = await response.text()
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, flags=re.S)
    assert scripts
    assert all('src="/docs/static/' in attrs and not body.strip() for attrs, body in scripts)
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp.split("script-src", 1)[1].split(";", 1)[0]
    assert "cdn" not in page.lower()
    init = await docs_client.get("/docs/static/sealflow-docs.js")
    text = await init.text()
    assert 'url: "/openapi.json"' in text  # Swagger UI 5 reads OpenAPI 3.1 as it is
    assert "persistAuthorization: true" in text
    gone = await docs_client.get("/docs/openapi-3.0.json")
    assert gone.status == 404  # no hand-written 3.0 downgrade any more


async def test_the_served_swagger_ui_is_version_5(docs_client: TestClient) -> None:
    """The bundle is a current Swagger UI (5.x renders 3.1; 4.15 could not)."""
    bundle = await (await docs_client.get("/docs/static/swagger-ui-bundle.js")).text()
    versions = set(re.findall(r'PACKAGE_VERSION:"(\d+)\.\d+\.\d+"', bundle))
    assert versions == {"5"}, versions


async def test_docs_without_installed_assets_is_503_and_the_api_spec_still_served(
    tmp_path: Path,
) -> None:
    """A missing swagger-ui-dist is a clear 503 naming the fix; nothing else breaks."""
    from gateway.appkeys import SETTINGS_KEY

    app = web.Application(middlewares=[error_middleware])
    app[SETTINGS_KEY] = GatewaySettings(swagger_ui_dir=tmp_path / "absent")
    add_docs_routes(app, all_operations())
    async with TestClient(TestServer(app)) as client:
        page = await client.get("/docs")
        assert page.status == 503
        body = await page.json()
        assert body["error"] == "unavailable"
        assert "make install" in body["detail"]
        asset = await client.get("/docs/static/swagger-ui-bundle.js")
        assert asset.status == 503
        assert (await client.get("/openapi.json")).status == 200


@pytest.mark.parametrize("name", sorted(STATIC_FILES))
async def test_static_assets_are_served_with_their_content_types(
    docs_client: TestClient, name: str
) -> None:
    response = await docs_client.get(f"/docs/static/{name}")
    assert response.status == 200
    assert response.content_type == STATIC_FILES[name]
    assert len(await response.read()) > 0


@pytest.mark.parametrize(
    "name", ["index.html", "swagger-ui-bundle.js.map", "..%2F..%2Fpyproject.toml", "%2e%2e"]
)
async def test_files_outside_the_allow_list_are_404(docs_client: TestClient, name: str) -> None:
    response = await docs_client.get(f"/docs/static/{name}")
    assert response.status == 404


@pytest.mark.integration
async def test_the_gateway_serves_docs_with_security_headers(gateway: Gateway) -> None:
    response = await gateway.client.get("/docs")
    assert response.status == 200
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    spec = await (await gateway.client.get("/openapi.json")).json()
    oidc = spec["components"]["securitySchemes"]["openIdConnect"]["openIdConnectUrl"]
    assert oidc == f"{gateway.settings.issuer_url}/.well-known/openid-configuration"


def _fuzz(
    spec: dict[str, Any], base_url: str, token: str, max_examples: int
) -> tuple[list[str], dict[str, set[int]]]:
    """Run schemathesis over every operation (positive and negative cases): the 5xx found, and
    the statuses each operation answered."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error

    schema = schemathesis.openapi.from_dict(spec)
    failures: list[str] = []
    statuses: dict[str, set[int]] = {}
    headers = {"Authorization": f"Bearer {token}"}
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=max_examples,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: Any) -> None:
                response = case.call(base_url=base_url, headers=headers, timeout=10)
                statuses.setdefault(case.operation.label, set()).add(response.status_code)
                if response.status_code >= 500:
                    failures.append(
                        f"{case.method} {case.formatted_path} {case.query!r} -> "
                        f"{response.status_code} {response.text[:200]}"
                    )
                case.validate_response(response, checks=[not_a_server_error])

            try:
                run()
            except Unsatisfiable:
                # Nothing in the operation can be made invalid (no parameters, no body).
                assert mode is GenerationMode.NEGATIVE
            except Exception as error:  # collected and reported below
                failures.append(
                    f"{operation.label} [{mode.value}]: {type(error).__name__}: {error}"
                )
    return failures, statuses


@pytest.mark.integration
@pytest.mark.timeout(600)
async def test_schemathesis_finds_no_server_error_with_an_admin_token(
    gateway: Gateway, audit_daemon: None
) -> None:
    spec = await (await gateway.client.get("/openapi.json")).json()
    base_url = str(gateway.client.make_url("")).rstrip("/")
    token = gateway.issuer.token("root", "admin")
    # requests is synchronous: run it in a thread while this loop serves the gateway.
    async with asyncio.timeout(540):
        failures, statuses = await asyncio.to_thread(_fuzz, spec, base_url, token, 8)
    assert failures == [], "\n".join(failures)
    # Every operation was called, and the admin token was accepted (not everything was 401).
    assert len(statuses) == sum(len(item) for item in spec["paths"].values())
    assert all(codes - {401} for codes in statuses.values()), statuses
