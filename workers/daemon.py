"""``sealflow worker``: consumes ``worker.jobs`` and drives each job to ``done`` or ``failed``."""

from __future__ import annotations

import asyncio

from broker import BrokerSettings, ServiceRuntime
from keys.filemodes import private_dir
from store import open_store
from workers.handlers import WorkerHandlers
from workers.settings import WorkerSettings

__all__ = ["serve"]


async def serve(
    settings: BrokerSettings | None = None,
    worker_settings: WorkerSettings | None = None,
    *,
    stop: asyncio.Event | None = None,
) -> None:
    """Run the worker until ``stop`` is set or SIGTERM/SIGINT arrives (``sealflow worker``)."""
    settings = settings if settings is not None else BrokerSettings()
    worker_settings = worker_settings if worker_settings is not None else WorkerSettings()
    runtime = ServiceRuntime("worker", settings)
    private_dir(settings.data_dir)
    store = await open_store(settings.database_url, settings.data_dir)

    async def setup(rt: ServiceRuntime) -> None:
        assert rt.publisher is not None
        assert rt.audit is not None
        rt.consume("worker.jobs", WorkerHandlers(store, rt.publisher, rt.audit).routes())

    await runtime.run(
        setup, health_port=worker_settings.health_port, stop=stop, cleanup=store.close
    )
