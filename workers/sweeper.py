"""The stuck-job sweeper: re-requests a parse nobody answered, or fails the job with a reason.

A ``parse.requested`` that waits past its envelope's life is dead-lettered by the broker, and
its job would stay ``processing`` for ever. Every ``sweep_interval`` the sweeper looks for
``processing`` jobs whose last parse request is older than ``stuck_after``. For each it claims
one more request in the store (a conditional update: of several worker replicas exactly one
wins) and sends a freshly sealed ``parse.requested``; after ``max_rerequests`` it fails the job
with ``parse_timeout`` and tells the gateway. Every decision is audited. A late genuine result
races it through the store's guarded transitions: whichever comes first wins.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Final

import structlog

from broker import BrokerError
from store import InvalidTransition, JobNotFound, StoreError, StuckJob
from workers.handlers import WorkerHandlers
from workers.settings import WorkerSettings

__all__ = ["PARSE_TIMEOUT", "StuckJobSweeper"]

_log = structlog.get_logger("sealflow.worker.sweeper")

PARSE_TIMEOUT: Final = "parse_timeout"
"""The reason a job fails with when no parse result came after every request."""

_BATCH: Final = 100


class StuckJobSweeper:
    """Sweeps the worker's store for stuck jobs, with the handlers' publisher, audit and ledger."""

    def __init__(self, handlers: WorkerHandlers, settings: WorkerSettings) -> None:
        self.handlers = handlers
        self.settings = settings

    async def run(self) -> None:
        """Sweep every ``sweep_interval`` until cancelled; a failed round is logged and retried.

        A round that fails for an unforeseen reason is logged with its traceback too: a
        sweeper that died quietly would leave stuck jobs stuck again.
        """
        while True:
            try:
                await self.sweep()
            except (BrokerError, StoreError) as error:
                _log.error("sweep.failed", error=str(error), kind=type(error).__name__)
            except Exception:  # noqa: BLE001 - logged; the next round tries again
                _log.exception("sweep.crashed")
            await asyncio.sleep(self.settings.sweep_interval)

    async def sweep(self) -> int:
        """One look for stuck jobs; returns how many were acted on (re-requested or failed)."""
        cutoff = datetime.now(UTC) - timedelta(seconds=self.settings.stuck_after)
        acted = 0
        for stuck in await self.handlers.store.stuck_jobs(requested_before=cutoff, limit=_BATCH):
            if stuck.rerequests < self.settings.max_rerequests:
                acted += await self._rerequest(stuck, cutoff)
            else:
                acted += await self._fail(stuck)
        return acted

    async def _rerequest(self, stuck: StuckJob, cutoff: datetime) -> int:
        """Claim the next request and send it; 0 when another replica claimed it first."""
        job = stuck.job
        number = await self.handlers.store.claim_parse_request(
            job.job_id, requested_before=cutoff, rerequests_below=self.settings.max_rerequests
        )
        if number is None:
            return 0
        log = _log.bind(job=job.job_id, trace=job.trace)
        sealed = await self.handlers.send_parse_request(job)
        await self.handlers.audit_decision(
            job,
            "job.parse_rerequested",
            "rerequest",
            "success",
            reason="parse_unanswered",
            jti=sealed.jti,
            detail=(
                f"no parse result {self.settings.stuck_after:g} s after the last request: "
                f"request {number} of {self.settings.max_rerequests} after the first"
            ),
        )
        log.warning("job.parse_rerequested", jti=sealed.jti, rerequest=number)
        return 1

    async def _fail(self, stuck: StuckJob) -> int:
        """Fail the job with ``parse_timeout`` and tell the gateway (once, across replicas)."""
        job = stuck.job
        detail = (
            f"no parse result after {stuck.rerequests + 1} requests, the last "
            f"{self.settings.stuck_after:g} s ago"
        )
        try:
            await self.handlers.store.transition(
                job.job_id, "failed", detail=detail, error_reason=PARSE_TIMEOUT
            )
        except (InvalidTransition, JobNotFound):
            # A result arrived (done) or the job was deleted since the look: it won.
            _log.info("job.sweep_lost_race", job=job.job_id, trace=job.trace)
            return 0
        await self.handlers.fail_job(job, PARSE_TIMEOUT, detail)
        _log.warning("job.parse_timed_out", job=job.job_id, trace=job.trace)
        return 1
