"""``sealflow worker``: consumes ``worker.jobs``, sweeps stuck jobs, drives each to an end."""

from __future__ import annotations

import asyncio
import contextlib

from broker import BrokerSettings, ServiceRuntime
from keys.filemodes import private_dir
from store import open_store
from workers.handlers import WorkerHandlers
from workers.settings import WorkerSettings
from workers.sweeper import StuckJobSweeper

__all__ = ["check_sweep_settings", "serve"]


def check_sweep_settings(settings: BrokerSettings, worker_settings: WorkerSettings) -> None:
    """Refuse a sweeper that would re-request a parse whose request may still be waiting."""
    if worker_settings.stuck_after <= settings.envelope_lifetime:
        raise ValueError(
            f"SEALFLOW_WORKER_STUCK_AFTER ({worker_settings.stuck_after:g} s) must be longer "
            f"than the envelope lifetime ({settings.envelope_lifetime} s) plus the parser's "
            "timeout: a parse request may wait that long in the queue"
        )


async def serve(
    settings: BrokerSettings | None = None,
    worker_settings: WorkerSettings | None = None,
    *,
    stop: asyncio.Event | None = None,
) -> None:
    """Run the worker until ``stop`` is set or SIGTERM/SIGINT arrives (``sealflow worker``)."""
    settings = settings if settings is not None else BrokerSettings()
    worker_settings = worker_settings if worker_settings is not None else WorkerSettings()
    check_sweep_settings(settings, worker_settings)
    runtime = ServiceRuntime("worker", settings)
    private_dir(settings.data_dir)
    store = await open_store(settings.database_url, settings.data_dir)
    sweeping: list[asyncio.Task[None]] = []

    async def setup(rt: ServiceRuntime) -> None:
        assert rt.publisher is not None
        assert rt.audit is not None
        handlers = WorkerHandlers(store, rt.publisher, rt.audit)
        rt.consume("worker.jobs", handlers.routes())
        sweeper = StuckJobSweeper(handlers, worker_settings)
        sweeping.append(asyncio.create_task(sweeper.run(), name="sweep-stuck-jobs"))

    async def cleanup() -> None:
        for task in sweeping:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await store.close()

    await runtime.run(setup, health_port=worker_settings.health_port, stop=stop, cleanup=cleanup)
