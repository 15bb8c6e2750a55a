"""Live job updates inside one gateway process: who is watching which job.

Each ``/api/jobs/{id}/events`` stream subscribes here; ``gateway.events`` notices are fanned
out to the job's subscribers. Everything is bounded: the number of subscribers, and each
subscriber's queue — a subscriber that does not keep up is dropped (its stream then ends;
an ``EventSource`` reconnects and gets the current state).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import structlog

from gateway.errors import TooManyRequests

__all__ = ["EventHub", "JobNotice", "Subscription"]

_log = structlog.get_logger("sealflow.gateway.hub")


@dataclass(frozen=True, slots=True)
class JobNotice:
    """A job changed state (the store holds the truth; this only wakes the watchers)."""

    job_id: str
    state: str


class Subscription:
    """One watcher of one job."""

    def __init__(self, job_id: str, size: int) -> None:
        self.job_id = job_id
        self.queue: asyncio.Queue[JobNotice] = asyncio.Queue(maxsize=size)
        self.dropped = False

    async def next(self, timeout: float) -> JobNotice | None:
        """The next notice, or None after ``timeout`` seconds without one."""
        try:
            async with asyncio.timeout(timeout):
                return await self.queue.get()
        except TimeoutError:
            return None


class EventHub:
    """Job id → subscriptions, with a cap on subscribers and on each queue."""

    def __init__(self, *, max_subscribers: int = 1_000, queue_size: int = 16) -> None:
        self.max_subscribers = max_subscribers
        self.queue_size = queue_size
        self._by_job: dict[str, set[Subscription]] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def subscribe(self, job_id: str) -> Subscription:
        """A new subscription; :class:`TooManyRequests` when the hub is full."""
        if self._count >= self.max_subscribers:
            raise TooManyRequests("too many live event streams; try again later")
        subscription = Subscription(job_id, self.queue_size)
        self._by_job.setdefault(job_id, set()).add(subscription)
        self._count += 1
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Forget ``subscription`` (idempotent)."""
        watchers = self._by_job.get(subscription.job_id)
        if watchers is None or subscription not in watchers:
            return
        watchers.discard(subscription)
        self._count -= 1
        if not watchers:
            del self._by_job[subscription.job_id]

    @contextlib.contextmanager
    def subscription(self, job_id: str) -> Iterator[Subscription]:
        """Subscribe for the length of a ``with`` block."""
        subscription = self.subscribe(job_id)
        try:
            yield subscription
        finally:
            self.unsubscribe(subscription)

    def publish(self, notice: JobNotice) -> int:
        """Wake the job's subscribers; returns how many got it. Full queues are dropped."""
        delivered = 0
        for subscription in list(self._by_job.get(notice.job_id, ())):
            try:
                subscription.queue.put_nowait(notice)
            except asyncio.QueueFull:
                subscription.dropped = True
                self.unsubscribe(subscription)
                _log.warning("hub.subscriber_dropped", job_id=notice.job_id)
                continue
            delivered += 1
        return delivered
