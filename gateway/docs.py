"""Swagger UI 5 at ``/docs``, served from npm's ``swagger-ui-dist`` (no CDN), on OpenAPI 3.1.

``make install`` unpacks the pinned ``swagger-ui-dist`` release into
``<environment>/share/sealflow/swagger-ui`` (the Dockerfile does the same);
``SEALFLOW_SWAGGER_UI_DIR`` points elsewhere. The page loads the bundle and one init script from
``/docs/static/``; nothing is inline, so its Content-Security-Policy allows scripts from the
gateway itself only. Only an allow-list of the files is served, read once at start; when they
are missing, ``/docs`` answers 503 saying how to install them and the API is unaffected.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import structlog
from aiohttp import web

from gateway.errors import NotFound, Unavailable
from gateway.operations import Operation, Parameter
from schemas import ErrorBody

__all__ = [
    "DOCS_KEY",
    "DOCS_OPERATIONS",
    "STATIC_FILES",
    "DocsBodies",
    "add_swagger_ui",
]

INIT_SCRIPT: Final = "sealflow-docs.js"
_log = structlog.get_logger("sealflow.gateway.docs")

# Served name -> content type. ``sealflow-docs.js`` is ours; the rest come from swagger-ui-dist.
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
    url: "/openapi.json",
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
    """What the docs routes answer: the spec, the static files (``None``: not installed)."""

    openapi_31: bytes
    static: dict[str, bytes] | None
    page_csp: str
    assets: Path


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


def _static_files(root: Path) -> dict[str, bytes] | None:
    """The allow-listed files from ``root``, or ``None`` (logged once) when any is missing."""
    try:
        files = {name: (root / name).read_bytes() for name in STATIC_FILES if name != INIT_SCRIPT}
    except OSError as error:
        _log.warning("docs.swagger_ui_missing", directory=str(root), error=error.strerror)
        return None
    files[INIT_SCRIPT] = _INIT.encode()
    return files


def _installed(request: web.Request) -> dict[str, bytes]:
    bodies = request.app[DOCS_KEY]
    if bodies.static is None:
        raise Unavailable(
            f"Swagger UI is not installed in {bodies.assets}: run `make install`, or set "
            "SEALFLOW_SWAGGER_UI_DIR to an unpacked swagger-ui-dist"
        )
    return bodies.static


async def openapi_json(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document."""
    return web.Response(body=request.app[DOCS_KEY].openapi_31, content_type="application/json")


async def docs_page(request: web.Request) -> web.Response:
    """The Swagger UI page."""
    _installed(request)
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
    body = _installed(request).get(name)
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
        responses={200: None, 503: ErrorBody},
        content_type="text/html",
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
        responses={200: None, 404: ErrorBody, 503: ErrorBody},
    ),
)
"""The docs routes, declared like every other so that the spec lists them too."""


def add_swagger_ui(
    app: web.Application, *, openapi_31: bytes, issuer: str | None, assets: Path
) -> None:
    """Register the docs routes answering with this document and the files under ``assets``."""
    app[DOCS_KEY] = DocsBodies(
        openapi_31=openapi_31,
        static=_static_files(assets),
        page_csp=_page_csp(issuer),
        assets=assets,
    )
    for op in DOCS_OPERATIONS:
        app.router.add_route(op.method, op.path, op.handler, name=op.operation_id)
