"""The pipeline's consuming daemons (audit, parser, worker) as tasks of the test's event loop.

They start on the test's broker settings and are ready when every one consumes its queue, as
the broker itself reports: a test never publishes into a queue nobody reads yet.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine, Sequence
from typing import Any

from aiohttp import web
from sealflow_testing import queue_counts
from yarl import URL

from broker import BrokerSettings, Topology

__all__ = ["QUEUE_OF", "daemons_for", "in_process_daemons", "wait_consuming"]

QUEUE_OF = {"audit": "audit.events", "parser": "parser.requests", "worker": "worker.jobs"}
"""The queue each consuming daemon reads."""


async def wait_consuming(
    channel: Any,
    topology: Topology,
    queues: Sequence[str],
    tasks: Sequence[asyncio.Task[None]] = (),
    *,
    timeout: float = 60,
) -> None:
    """Until each of ``queues`` has a consumer; a task of ``tasks`` that ends first fails it."""
    async with asyncio.timeout(timeout):
        for queue in queues:
            while (await queue_counts(channel, topology.queue(queue)))[1] == 0:
                for task in tasks:
                    if task.done():
                        task.result()  # its exception, if it failed
                        raise RuntimeError(f"a daemon stopped before {queue} had a consumer")
                await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def in_process_daemons(
    settings: BrokerSettings,
    channel: Any,
    *,
    services: Sequence[str] = ("audit", "parser", "worker"),
    audit_api_port: int = 0,
    checkpoint_every: int | None = None,
) -> AsyncIterator[None]:
    """``services`` on ``settings``, consuming before this yields; stopped after.

    ``channel`` is any open channel of the test's (it declares the topology, idempotently,
    and asks the broker for consumer counts). The audit daemon serves its query API on
    ``audit_api_port`` (0: none). A daemon that failed fails the test on exit.
    """
    from audit import AuditSettings
    from audit.daemon import AuditDaemonSettings
    from audit.daemon import serve as serve_audit
    from parser.daemon import ParserSettings
    from parser.daemon import serve as serve_parser
    from workers import WorkerSettings
    from workers import serve as serve_worker

    if channel is None:
        raise ValueError("in_process_daemons needs an open channel")
    topology = Topology(settings.namespace)
    await topology.declare(channel)
    stop = asyncio.Event()
    every = {} if checkpoint_every is None else {"checkpoint_every": checkpoint_every}
    runs: dict[str, Coroutine[Any, Any, None]] = {
        "audit": serve_audit(
            settings,
            AuditDaemonSettings(health_port=0, api_port=audit_api_port, batch_wait=0.001),
            AuditSettings(data_dir=settings.data_dir, keys_dir=settings.keys_dir, **every),
            stop=stop,
        ),
        "parser": serve_parser(
            settings, ParserSettings(health_port=0, timeout_seconds=15), stop=stop
        ),
        "worker": serve_worker(settings, WorkerSettings(health_port=0), stop=stop),
    }
    tasks = [asyncio.create_task(runs.pop(service)) for service in services]
    for unused in runs.values():
        unused.close()
    try:
        queues = [QUEUE_OF[service] for service in services]
        await wait_consuming(channel, topology, queues, tasks)
        yield
    finally:
        stop.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result


def daemons_for(
    app: web.Application, settings: BrokerSettings
) -> contextlib.AbstractAsyncContextManager[None]:
    """The three daemons in-process for the gateway ``app``, on its broker connection; the
    audit daemon serves its query API where the gateway reads the log."""
    from gateway import RUNTIME_KEY, SETTINGS_KEY

    return in_process_daemons(
        settings,
        app[RUNTIME_KEY].consume_channel,
        audit_api_port=URL(app[SETTINGS_KEY].audit_url).port or 0,
    )
