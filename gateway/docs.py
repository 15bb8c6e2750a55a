"""Swagger UI at ``/docs``, served from the ``swagger-ui-bundle`` package (no CDN).

The page loads the bundle and one init script from ``/docs/static/``; nothing is inline, so
its Content-Security-Policy allows scripts from the gateway itself only. Only an allow-list
of the bundle's files is served, read once when the routes are added.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources.abc import Traversable
from typing import Final
from urllib.parse import urlsplit

import swagger_ui_bundle  # type: ignore[import-untyped]
from aiohttp import web

from gateway.errors import NotFound
from gateway.operations import Operation, Parameter
from schemas import ErrorBody

__all__ = ["DOCS_KEY", "DOCS_OPERATIONS", "STATIC_FILES", "DocsBodies", "add_swagger_ui"]

INIT_SCRIPT: Final = "sealflow-docs.js"

# Served name -> content type. ``sealflow-docs.js`` is ours; the rest come from the bundle.
STATIC_FILES: Final = {
    "swagger-ui.css": "text/css",
    "index.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "favicon-16x16.png": "image/png",
    "favicon-32x32.png": "image/png",
    INIT_SCRIPT: "text/javascript",
}

_PAGE: Final = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Sealflow gateway API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css">
<link rel="stylesheet" href="/docs/static/index.css">
<link rel="icon" type="image/png" href="/docs/static/favicon-32x32.png" sizes="32x32">
<link rel="icon" type="image/png" href="/docs/static/favicon-16x16.png" sizes="16x16">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script src="/docs/static/sealflow-docs.js"></script>
</body>
</html>
"""

# The "Authorize" button takes a pasted access token (bearerAuth); persistAuthorization keeps
# it across reloads (in the browser's localStorage, for this origin only).
_INIT: Final = """"use strict";
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/docs/openapi-3.0.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: true,
    tryItOutEnabled: true,
    queryConfigEnabled: false,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
});
"""


@dataclass(frozen=True, slots=True)
class DocsBodies:
    """What the docs routes answer: the two spec renditions and the static files."""

    openapi_31: bytes
    openapi_30: bytes
    static: dict[str, bytes]
    page_csp: str


DOCS_KEY: Final = web.AppKey("gateway_docs", DocsBodies)


def _page_csp(issuer: str | None) -> str:
    connect = "'self'"
    if issuer is not None:
        parts = urlsplit(issuer)
        if parts.scheme in {"http", "https"} and parts.netloc:
            connect += f" {parts.scheme}://{parts.netloc}"  # OIDC discovery, from the browser
    return (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        f"img-src 'self' data:; font-src 'self' data:; connect-src {connect}; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )


def _static_files() -> dict[str, bytes]:
    root: Traversable = swagger_ui_bundle.swagger_ui_path
    files = {name: (root / name).read_bytes() for name in STATIC_FILES if name != INIT_SCRIPT}
    files[INIT_SCRIPT] = _INIT.encode()
    return files


async def openapi_json(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document."""
    return web.Response(body=request.app[DOCS_KEY].openapi_31, content_type="application/json")


async def openapi_30_json(request: web.Request) -> web.Response:
    """The same document as OpenAPI 3.0.3, which the bundled Swagger UI renders."""
    return web.Response(body=request.app[DOCS_KEY].openapi_30, content_type="application/json")


async def docs_page(request: web.Request) -> web.Response:
    """The Swagger UI page."""
    return web.Response(
        text=_PAGE,
        content_type="text/html",
        headers={
            "Content-Security-Policy": request.app[DOCS_KEY].page_csp,
            "Cache-Control": "no-cache",
        },
    )


async def docs_asset(request: web.Request) -> web.Response:
    """One file of the allow-list; anything else is 404."""
    name = request.match_info["filename"]
    body = request.app[DOCS_KEY].static.get(name)
    if body is None:
        raise NotFound("no such file")
    return web.Response(
        body=body,
        content_type=STATIC_FILES[name],
        headers={"Cache-Control": "public, max-age=3600"},
    )


DOCS_OPERATIONS: Final[tuple[Operation, ...]] = (
    Operation(
        "GET",
        "/openapi.json",
        openapi_json,
        "getOpenApi",
        "This API as OpenAPI 3.1",
        "docs",
        auth="none",
        responses={200: None},
    ),
    Operation(
        "GET",
        "/docs",
        docs_page,
        "getDocs",
        "Swagger UI",
        "docs",
        auth="none",
        responses={200: None},
        content_type="text/html",
    ),
    Operation(
        "GET",
        "/docs/openapi-3.0.json",
        openapi_30_json,
        "getOpenApi30",
        "This API as OpenAPI 3.0.3 (for Swagger UI)",
        "docs",
        auth="none",
        responses={200: None},
    ),
    Operation(
        "GET",
        "/docs/static/{filename}",
        docs_asset,
        "getDocsAsset",
        "A file of the Swagger UI page",
        "docs",
        auth="none",
        parameters=(
            Parameter(
                "filename",
                "path",
                "One of the page's files.",
                required=True,
                schema={"type": "string", "enum": list(STATIC_FILES)},
            ),
        ),
        responses={200: None, 404: ErrorBody},
    ),
)
"""The docs routes, declared like every other so that the spec lists them too."""


def add_swagger_ui(
    app: web.Application, *, openapi_31: bytes, openapi_30: bytes, issuer: str | None
) -> None:
    """Register the docs routes answering with these documents."""
    app[DOCS_KEY] = DocsBodies(
        openapi_31=openapi_31,
        openapi_30=openapi_30,
        static=_static_files(),
        page_csp=_page_csp(issuer),
    )
    for op in DOCS_OPERATIONS:
        app.router.add_route(op.method, op.path, op.handler, name=op.operation_id)
