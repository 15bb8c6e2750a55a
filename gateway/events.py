"""``gateway.events``: the worker's sealed ``job.progress`` / ``job.completed`` / ``job.failed``.

The worker has already written the state to the shared job store before it sends the event,
so the gateway reads the store for the truth and uses each event only to wake the job's live
streams (:class:`gateway.hub.EventHub`). Envelopes are opened by ``broker.Consumer`` like any
other; a body that contradicts its envelope is a permanent failure (dead-lettered).
"""

from __future__ import annotations

from typing import Any

import structlog

from broker import Delivery, Handler, Opened, PermanentFailure
from gateway.hub import EventHub, JobNotice
from schemas import JobCompleted, JobFailed, JobProgress

__all__ = ["EVENTS_QUEUE", "JobEventRelay"]

EVENTS_QUEUE = "gateway.events"

_log = structlog.get_logger("sealflow.gateway.events")


class JobEventRelay:
    """Handlers for the consumer of ``gateway.events``."""

    def __init__(self, hub: EventHub) -> None:
        self.hub = hub

    def routes(self) -> dict[str, Handler]:
        """Message type → handler."""
        return {
            "job.progress": self.on_progress,
            "job.completed": self.on_completed,
            "job.failed": self.on_failed,
        }

    async def on_progress(self, opened: Opened[JobProgress], delivery: Delivery) -> None:
        self._relay(opened, opened.message.job_id, opened.message.owner, opened.message.state)

    async def on_completed(self, opened: Opened[JobCompleted], delivery: Delivery) -> None:
        self._relay(opened, opened.message.job_id, opened.message.owner, "done")

    async def on_failed(self, opened: Opened[JobFailed], delivery: Delivery) -> None:
        self._relay(opened, opened.message.job_id, opened.message.owner, "failed")

    def _relay(self, opened: Opened[Any], job_id: str, owner: str, state: str) -> None:
        claims = opened.claims
        if claims.job is not None and claims.job != job_id:
            raise PermanentFailure(
                "envelope job claim differs from the body's job_id", reason="job_mismatch"
            )
        if owner != claims.sub:
            raise PermanentFailure(
                "job owner differs from the envelope's subject", reason="owner_mismatch"
            )
        woken = self.hub.publish(JobNotice(job_id=job_id, state=state))
        _log.debug("job.event_relayed", job_id=job_id, state=state, watchers=woken)
