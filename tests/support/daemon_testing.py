"""Running one daemon in-process for a test: started until it consumes its queue, then stopped.

Each daemon has its own stop event, so a test can start the parser late (after a parse request
expired) or never, which the shared ``pipeline`` fixtures cannot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from sealflow_testing import queue_counts

__all__ = ["RunningDaemon", "start_daemon"]


@dataclass
class RunningDaemon:
    """A daemon task and the event that stops it."""

    task: asyncio.Task[None]
    stop: asyncio.Event

    async def close(self) -> None:
        """Stop the daemon and re-raise whatever ended it."""
        self.stop.set()
        await self.task


async def start_daemon(
    serve: Callable[[asyncio.Event], Coroutine[Any, Any, None]],
    channel: Any,
    queue: str,
    *,
    timeout: float = 60,
) -> RunningDaemon:
    """Run ``serve(stop)`` and wait (bounded) until the broker shows it consuming ``queue``."""
    stop = asyncio.Event()
    task = asyncio.create_task(serve(stop))
    async with asyncio.timeout(timeout):
        while (await queue_counts(channel, queue))[1] == 0:
            if task.done():
                task.result()
                raise AssertionError(f"the daemon ended before consuming {queue}")
            await asyncio.sleep(0.05)
    return RunningDaemon(task, stop)
