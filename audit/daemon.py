"""``sealflow audit`` (the daemon): consumes ``audit.events`` into the hash-chained log, and
serves the query API (``audit.api``) through which the gateway reads it.

A message is acknowledged only after its record is on disk: handlers hand their event to a
batching writer and wait for the fsync of the batch that holds it, so many events share one
fsync under load. Envelopes addressed to the audit service that fail to open are recorded
here directly, because publishing them back through the broker could loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import structlog
from aiohttp import web
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from audit.api import QueryApi, serve_query_api
from audit.errors import AuditLogError
from audit.log import AuditLog
from audit.settings import AuditSettings
from broker import (
    BrokerSettings,
    Delivery,
    Opened,
    PermanentFailure,
    ServiceRuntime,
    SpentIds,
    SpentIdsJournal,
)
from keys import KeyRing
from schemas import AuditEvent

__all__ = ["AuditDaemonSettings", "AuditWriter", "serve"]

_log = structlog.get_logger("sealflow.audit")


class AuditDaemonSettings(BaseSettings):
    """The audit daemon's own knobs (``SEALFLOW_AUDIT_*``); the log's are in ``AuditSettings``."""

    model_config = SettingsConfigDict(env_prefix="SEALFLOW_AUDIT_", extra="ignore")

    health_port: int = Field(default=9103, ge=0, le=65535)
    batch_max: int = Field(default=256, ge=1)
    """Most events one append (one fsync) takes."""
    batch_wait: float = Field(default=0.0, ge=0)
    """Seconds a batch waits for more events after taking those already queued. 0 (default):
    none; the events that arrive during one fsync form the next batch (group commit)."""
    api_host: str = "127.0.0.1"
    """``SEALFLOW_AUDIT_API_HOST``: where the query API listens."""
    api_port: int = Field(default=8082, ge=0, le=65535)
    """``SEALFLOW_AUDIT_API_PORT``: the query API's port (0: no query API)."""
    api_reader: str = Field(default="gateway", pattern=r"^[a-z][a-z0-9_-]{0,62}$")
    """The one service whose service tokens the query API accepts."""
    api_read_timeout: float = Field(default=20.0, gt=0, le=300)
    """Longest one query may read the log."""
    api_replay_entries: int = Field(default=100_000, ge=1)
    """Spent service-token ids remembered (each until its token expires)."""


class AuditWriter:
    """Batches events from concurrent handlers into one append + fsync, off the event loop.

    A batch is every event queued when the previous fsync ended (up to ``batch_max``), plus
    those arriving within ``batch_wait``; each handler acks only after its batch's fsync.

    If the disk refuses a write the log refuses every later append; the writer then sets
    ``failed`` so the daemon stops (unacknowledged events go back to the queue) and a restart
    reopens the log, which trims a torn last line.
    """

    def __init__(
        self, log: AuditLog, *, batch_max: int, batch_wait: float, checkpoint_interval: float
    ) -> None:
        self.log = log
        self.batch_max = batch_max
        self.batch_wait = batch_wait
        self.checkpoint_interval = checkpoint_interval
        self.failed = asyncio.Event()
        self.error: BaseException | None = None
        self._queue: asyncio.Queue[tuple[AuditEvent, asyncio.Future[None]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the writing loop."""
        self._task = asyncio.create_task(self._run(), name="audit-writer")

    async def emit(self, event: AuditEvent) -> None:
        """Append ``event``; returns once it is on disk (an :class:`AuditSink`)."""
        if self.error is not None:
            raise AuditLogError("the audit log stopped accepting writes", reason="write_failed")
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
        while True:
            try:
                first = await asyncio.wait_for(self._queue.get(), timeout=self.checkpoint_interval)
            except TimeoutError:
                await asyncio.to_thread(self.log.checkpoint_if_due)
                continue
            batch = [first]
            # Group commit: every event that arrived during the last fsync joins this one.
            while len(batch) < self.batch_max and not self._queue.empty():
                batch.append(self._queue.get_nowait())
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
                # One thread trip: append also writes a checkpoint when one is due.
                await asyncio.to_thread(self.log.append, [event for event, _ in batch])
            except (AuditLogError, OSError) as exc:
                _log.error("audit.write_failed", error=str(exc))
                self.error = exc
                self.failed.set()
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                return
            for _, future in batch:
                if not future.done():
                    future.set_result(None)


async def serve(
    settings: BrokerSettings | None = None,
    audit_settings: AuditDaemonSettings | None = None,
    log_settings: AuditSettings | None = None,
    *,
    stop: asyncio.Event | None = None,
) -> None:
    """Run the audit service until ``stop`` is set or SIGTERM/SIGINT arrives."""
    settings = settings if settings is not None else BrokerSettings()
    audit_settings = audit_settings if audit_settings is not None else AuditDaemonSettings()
    log_settings = log_settings if log_settings is not None else AuditSettings()
    stop = stop if stop is not None else asyncio.Event()
    runtime = ServiceRuntime("audit", settings)
    signer = KeyRing.load(settings.keys_dir, "audit").signing_key()
    anchor = await log_settings.open_anchor()
    log = await asyncio.to_thread(
        AuditLog.open,
        settings.data_dir / "audit",
        signer=signer,
        checkpoint_every=log_settings.checkpoint_every,
        checkpoint_interval=log_settings.checkpoint_interval,
        segment_max_records=log_settings.segment_max_records,
        dedup_window=log_settings.dedup_window,
        anchor=anchor,
    )
    writer = AuditWriter(
        log,
        batch_max=audit_settings.batch_max,
        batch_wait=audit_settings.batch_wait,
        checkpoint_interval=log_settings.checkpoint_interval,
    )
    await writer.start()
    stop_on_failure = asyncio.create_task(_stop_when(writer.failed, stop))
    try:
        api = await _start_api(runtime, writer, settings, audit_settings)
    except BaseException:
        stop_on_failure.cancel()
        await writer.close()
        raise

    async def on_event(opened: Opened[AuditEvent], delivery: Delivery) -> None:
        event = opened.message
        if event.source != opened.claims.iss:
            raise PermanentFailure(
                f"event source {event.source} differs from envelope iss {opened.claims.iss}",
                reason="source_mismatch",
            )
        await writer.emit(event)

    async def setup(rt: ServiceRuntime) -> None:
        rt.consume("audit.events", {"audit.*": on_event}, audit=writer)

    try:
        await runtime.run(
            setup, health_port=audit_settings.health_port, stop=stop, cleanup=writer.close
        )
    finally:
        stop_on_failure.cancel()
        if api is not None:
            await api.cleanup()
    if writer.error is not None:
        raise writer.error


async def _start_api(
    runtime: ServiceRuntime,
    writer: AuditWriter,
    settings: BrokerSettings,
    audit_settings: AuditDaemonSettings,
) -> web.AppRunner | None:
    """The query API on its port, or None when ``api_port`` is 0."""
    if not audit_settings.api_port:
        return None
    spent = SpentIds(
        audit_settings.api_replay_entries,
        journal=SpentIdsJournal(settings.data_dir / "replay" / "audit-api.jtis"),
    )
    spent.restore(time.time())  # tokens spent before a restart stay spent
    api = QueryApi(
        directory=settings.data_dir / "audit",
        trust=runtime.trust,
        reader=audit_settings.api_reader,
        replay=spent,
        audit=writer,
        revocations=runtime.revocations,
        leeway=settings.leeway,
        read_timeout=audit_settings.api_read_timeout,
    )
    return await serve_query_api(api, audit_settings.api_host, audit_settings.api_port)


async def _stop_when(failed: asyncio.Event, stop: asyncio.Event) -> None:
    await failed.wait()
    stop.set()
