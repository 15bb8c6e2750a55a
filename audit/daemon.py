"""``sealflow audit`` (the daemon): consumes ``audit.events`` into the hash-chained log.

A message is acknowledged only after its record is on disk: handlers hand their event to a
batching writer and wait for the fsync of the batch that holds it, so many events share one
fsync under load. Envelopes addressed to the audit service that fail to open are recorded
here directly, because publishing them back through the broker could loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import structlog
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from audit.log import AuditLog
from broker import BrokerSettings, Delivery, Opened, ServiceRuntime, configure_logging
from broker import run_daemon as run_service
from keys import KeyRing
from schemas import AuditEvent

__all__ = ["AuditDaemonSettings", "AuditWriter", "run_daemon", "serve"]

_log = structlog.get_logger("sealflow.audit")


class AuditDaemonSettings(BaseSettings):
    """The audit daemon's knobs (``SEALFLOW_AUDIT_*``)."""

    model_config = SettingsConfigDict(env_prefix="SEALFLOW_AUDIT_", extra="ignore")

    health_port: int = Field(default=9103, ge=0, le=65535)
    checkpoint_every: int = Field(default=1000, ge=1)
    checkpoint_interval: float = Field(default=60.0, gt=0)
    batch_max: int = Field(default=256, ge=1)
    batch_wait: float = Field(default=0.005, ge=0)


class AuditWriter:
    """Batches events from concurrent handlers into one append + fsync, off the event loop."""

    def __init__(
        self, log: AuditLog, *, batch_max: int, batch_wait: float, checkpoint_interval: float
    ) -> None:
        self.log = log
        self.batch_max = batch_max
        self.batch_wait = batch_wait
        self.checkpoint_interval = checkpoint_interval
        self._queue: asyncio.Queue[tuple[AuditEvent, asyncio.Future[None]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Start the writing loop."""
        self._task = asyncio.create_task(self._run(), name="audit-writer")

    async def emit(self, event: AuditEvent) -> None:
        """Append ``event``; returns once it is on disk (an :class:`AuditSink`)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._queue.put((event, future))
        await future

    async def close(self) -> None:
        """Stop the loop, checkpoint and close the log."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await asyncio.to_thread(self.log.close)

    async def _run(self) -> None:
        last_checkpoint = time.monotonic()
        while True:
            try:
                first = await asyncio.wait_for(self._queue.get(), timeout=self.checkpoint_interval)
            except TimeoutError:
                await asyncio.to_thread(self.log.checkpoint)
                last_checkpoint = time.monotonic()
                continue
            batch = [first]
            deadline = time.monotonic() + self.batch_wait
            while len(batch) < self.batch_max:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), timeout=remaining))
                except TimeoutError:
                    break
            try:
                await asyncio.to_thread(self.log.append, [event for event, _ in batch])
            except Exception as exc:  # noqa: BLE001 - every waiting handler gets the error
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for _, future in batch:
                if not future.done():
                    future.set_result(None)
            if time.monotonic() - last_checkpoint >= self.checkpoint_interval:
                await asyncio.to_thread(self.log.checkpoint)
                last_checkpoint = time.monotonic()


async def serve(
    settings: BrokerSettings | None = None,
    audit_settings: AuditDaemonSettings | None = None,
    *,
    stop: asyncio.Event | None = None,
) -> None:
    """Run the audit service until ``stop`` is set or SIGTERM/SIGINT arrives."""
    settings = settings if settings is not None else BrokerSettings()
    audit_settings = audit_settings if audit_settings is not None else AuditDaemonSettings()
    runtime = ServiceRuntime("audit", settings)
    signer = KeyRing.load(settings.keys_dir, "audit").signing_key()
    log = await asyncio.to_thread(
        AuditLog.open,
        settings.data_dir / "audit",
        signer=signer,
        checkpoint_every=audit_settings.checkpoint_every,
        checkpoint_interval=audit_settings.checkpoint_interval,
    )
    writer = AuditWriter(
        log,
        batch_max=audit_settings.batch_max,
        batch_wait=audit_settings.batch_wait,
        checkpoint_interval=audit_settings.checkpoint_interval,
    )
    await writer.start()

    async def on_event(opened: Opened[AuditEvent], delivery: Delivery) -> None:
        event = opened.message
        if event.source != opened.claims.iss:
            raise ValueError(
                f"event source {event.source} differs from envelope iss {opened.claims.iss}"
            )
        await writer.emit(event)

    async def setup(rt: ServiceRuntime) -> None:
        rt.consume("audit.events", {"audit.*": on_event}, audit=writer)

    await run_service(
        runtime, setup, health_port=audit_settings.health_port, stop=stop, cleanup=writer.close
    )


def run_daemon() -> None:
    """Entry point of ``sealflow audit`` with no sub-command."""
    configure_logging("audit")
    asyncio.run(serve())
