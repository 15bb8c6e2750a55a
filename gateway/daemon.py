"""``sealflow gateway``: the HTTP API plus its broker runtime, stopped cleanly on SIGTERM.

The broker runtime starts first (publisher, audit sink, trust, revocations); then the web
server listens and the ``gateway.events`` consumer starts. Readiness (``/readyz`` on the
health port) means connected and consuming. On SIGTERM the consumer stops, in-flight messages
finish, the broker connection closes, then the web server shuts down (its in-flight requests
get ``shutdown_timeout``; an upload that can no longer publish is answered 503 and leaves no
job behind).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

import structlog
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from broker import BrokerSettings, ServiceRuntime
from gateway.app import create_app
from gateway.settings import GatewaySettings
from keys.filemodes import private_dir

__all__ = ["serve"]

_log = structlog.get_logger("sealflow.gateway")


class _MalformedRequests(logging.Filter):
    """aiohttp logs a malformed request (a header over 8,190 bytes, a broken request line) as
    an error with its traceback; it is the client's mistake, answered 400, so it becomes one
    short info line ``http.bad_request`` with the parser's one-line reason."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            record.msg, record.args = "http.bad_request", ()
            record.error = " ".join(str(error.message).split())[:200]
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


_HTTP_LOG: Final = logging.getLogger("sealflow.gateway.http")
_HTTP_LOG.addFilter(_MalformedRequests())


async def serve(
    settings: GatewaySettings | None = None,
    broker_settings: BrokerSettings | None = None,
    *,
    stop: asyncio.Event | None = None,
    started: asyncio.Event | None = None,
) -> None:
    """Run the gateway until ``stop`` is set or SIGTERM/SIGINT arrives.

    ``started`` is set once the web server listens (tests wait on it); the bound port is then
    in ``settings.port`` when 0 was asked for.
    """
    settings = settings if settings is not None else GatewaySettings()
    broker_settings = broker_settings if broker_settings is not None else BrokerSettings()
    private_dir(settings.data_dir)
    runtime = ServiceRuntime("gateway", broker_settings)
    runner: web.AppRunner | None = None

    async def setup(rt: ServiceRuntime) -> None:
        nonlocal runner
        app = create_app(settings, broker_settings=broker_settings, runtime=rt)
        runner = web.AppRunner(
            app,
            access_log=None,
            shutdown_timeout=settings.shutdown_timeout,
            handler_cancellation=True,
            # aiohttp arms this timer when a connection opens and again after each answer, and
            # closes the connection if no whole request head has arrived when it fires: the
            # header read timeout (partial headers do not re-arm it).
            keepalive_timeout=settings.header_timeout,
            logger=_HTTP_LOG,
        )
        await runner.setup()
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        addresses = runner.addresses
        if settings.port == 0 and addresses:
            settings.port = int(addresses[0][1])
        _log.info("gateway.listening", host=settings.host, port=settings.port)
        if started is not None:
            started.set()

    async def cleanup() -> None:
        if runner is not None:
            await runner.cleanup()

    await runtime.run(setup, health_port=settings.health_port, stop=stop, cleanup=cleanup)
