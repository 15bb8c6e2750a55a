"""A bounded queue that handlers fill without waiting and one task drains, item by item.

The identity's audit trail and its revocation broadcasts both must never hold up a sign-in
while the broker is slow or away; each subclass says how one item is delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from typing import Generic, TypeVar

__all__ = ["Outbox"]

T = TypeVar("T")


class Outbox(ABC, Generic[T]):
    """Queues items for :meth:`_deliver`; :meth:`start` the sender, :meth:`close` to drain."""

    def __init__(self, *, name: str, max_queued: int) -> None:
        self._name = name
        self._queue: asyncio.Queue[T] = asyncio.Queue(maxsize=max_queued)
        self._task: asyncio.Task[None] | None = None

    def _put(self, item: T) -> bool:
        """Queue ``item`` without blocking; False when the queue is full."""
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            return False
        return True

    @abstractmethod
    async def _deliver(self, item: T) -> None:
        """Deliver one item; must not raise (log what fails)."""

    def _unsent(self, count: int) -> None:
        """``count`` items were still queued when :meth:`close` gave up waiting."""

    def start(self) -> None:
        """Start the sender task (idempotent)."""
        if self._task is None:
            self._task = asyncio.create_task(self._send_forever(), name=self._name)

    async def drain(self) -> None:
        """Wait until every queued item has been delivered (or given up on)."""
        await self._queue.join()

    async def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (bounded by ``timeout``), then stop the sender."""
        if self._task is None:
            return
        try:
            await asyncio.wait_for(self._queue.join(), timeout)
        except TimeoutError:
            self._unsent(self._queue.qsize())
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _send_forever(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                await self._deliver(item)
            finally:
                self._queue.task_done()
