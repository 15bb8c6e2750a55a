"""``sealflow identity``: the provider on its issuer's host and port, auditing and broadcasting
revocations over the broker.

The HTTP side starts at once and never waits for RabbitMQ: the broker connection is made (and
retried with back-off) in the background, and audit events that cannot be published meanwhile
are logged at error level and counted (see :mod:`identity.audit`). So sign-ins keep working
while the broker is down; the trail of that time is in the logs instead of the audit log.
Revocations wait and are retried until the broker takes them (see :mod:`identity.control`).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

import structlog
from aiohttp import web

from broker import (
    AuditSink,
    BrokerSettings,
    PublishFailed,
    ServiceRuntime,
    stop_on_signals,
)
from broker.health import serve_health
from identity.app import create_app
from identity.control import RevocationSink, RuntimeRevocationSink
from identity.settings import IdentitySettings
from schemas import AuditEvent

__all__ = ["IdentityServer", "RuntimeAuditSink", "serve"]

_log = structlog.get_logger("sealflow.identity.daemon")
_MAX_RETRY_DELAY: Final = 30.0


class RuntimeAuditSink:
    """Publishes through the runtime's sealed audit sink once the broker is connected."""

    def __init__(self, runtime: ServiceRuntime) -> None:
        self.runtime = runtime

    async def emit(self, event: AuditEvent) -> None:
        """Seal for ``audit`` and publish; ``PublishFailed`` while not connected."""
        sink = self.runtime.audit
        if sink is None:
            raise PublishFailed("not connected to the broker (yet); event not published")
        await sink.emit(event)


class IdentityServer:
    """The provider's HTTP listener, its health listener and its broker connection."""

    def __init__(
        self,
        settings: IdentitySettings | None = None,
        broker_settings: BrokerSettings | None = None,
        *,
        audit: AuditSink | None = None,
    ) -> None:
        self.settings = settings if settings is not None else IdentitySettings()
        self.broker_settings = broker_settings if broker_settings is not None else BrokerSettings()
        self.runtime: ServiceRuntime | None = None
        revocations: RevocationSink | None = None
        if audit is None:
            self.runtime = ServiceRuntime("identity", self.broker_settings)
            audit = RuntimeAuditSink(self.runtime)
            revocations = RuntimeRevocationSink(self.runtime)
        self.app = create_app(self.settings, audit=audit, revocations=revocations)
        self.broker_connected = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._health: web.AppRunner | None = None
        self._connector: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The port the provider listens on (useful when the settings asked for port 0)."""
        if self._runner is None or not self._runner.addresses:
            raise RuntimeError("IdentityServer.start() has not run")
        return int(self._runner.addresses[0][1])

    async def start(self) -> None:
        """Listen on the configured host and port; connect to the broker in the background."""
        host, port = self.settings.bind()
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        _log.info("identity.listening", host=host, port=self.port, issuer=self.settings.issuer_url)
        if self.settings.identity_health_port:
            # Ready as soon as it serves: sign-ins do not depend on the broker.
            self._health = await serve_health(
                "identity",
                self.broker_settings.health_host,
                self.settings.identity_health_port,
                ready=lambda: True,
                details=lambda: {"broker": self.broker_connected.is_set()},
            )
        if self.runtime is not None:
            self._connector = asyncio.create_task(self._connect(self.runtime), name="broker")

    async def stop(self) -> None:
        """Stop taking requests, send the queued audit events, then close the broker side."""
        if self._connector is not None:
            self._connector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connector
        if self._runner is not None:
            await self._runner.cleanup()  # runs the app's cleanup: drains the audit queue
        if self._health is not None:
            await self._health.cleanup()
        if self.runtime is not None:
            await self.runtime.stop()
        _log.info("identity.stopped")

    async def _connect(self, runtime: ServiceRuntime) -> None:
        delay = 1.0
        while True:
            try:
                await runtime.start()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - any connect failure is retried
                _log.error(
                    "identity.broker_unavailable",
                    error=f"{type(error).__name__}: {error}",
                    retry_in=delay,
                    detail="sign-ins continue; audit events are logged, not published",
                )
                if runtime.connection is not None:
                    with contextlib.suppress(Exception):
                        await runtime.connection.close()
                    runtime.connection = None
                runtime.audit = None
                await asyncio.sleep(delay)
                delay = min(delay * 2, _MAX_RETRY_DELAY)
                continue
            self.broker_connected.set()
            _log.info("identity.broker_connected")
            return


async def serve(
    settings: IdentitySettings | None = None,
    broker_settings: BrokerSettings | None = None,
    *,
    stop: asyncio.Event | None = None,
) -> None:
    """Run the identity provider until ``stop`` is set or SIGTERM/SIGINT arrives."""
    stop = stop_on_signals(stop)
    server = IdentityServer(settings, broker_settings)
    try:
        await server.start()
        _log.info("identity.ready", port=server.port)
        await stop.wait()
        _log.info("identity.stopping")
    finally:
        await server.stop()
