"""The one health listener every daemon serves: ``/healthz``, ``/readyz`` and ``/metrics`` on
``SEALFLOW_HEALTH_HOST`` (127.0.0.1 by default) and the daemon's health port."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

__all__ = ["serve_health"]

_log = structlog.get_logger("sealflow.broker.health")


async def serve_health(
    service: str,
    host: str,
    port: int,
    *,
    ready: Callable[[], bool],
    details: Callable[[], Mapping[str, object]] | None = None,
) -> web.AppRunner:
    """Listen on ``host``:``port``; ``/readyz`` answers 200 while ``ready()``, else 503, with
    ``details()`` (if given) added to its JSON. The caller cleans the runner up."""

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "service": service})

    async def readyz(_: web.Request) -> web.Response:
        is_ready = ready()
        body: dict[str, object] = {
            "status": "ready" if is_ready else "not_ready",
            "service": service,
        }
        if details is not None:
            body.update(details())
        return web.json_response(body, status=200 if is_ready else 503)

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    _log.info("health.listening", service=service, host=host, port=port)
    return runner
