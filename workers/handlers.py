"""The worker's handlers: ``job.submitted`` → ``parse.requested``; parse results → job events.

Every handler is idempotent: states move through the store's atomic transitions and each
outgoing event is recorded in the store's ledger, so a redelivered message produces no second
result and no second event.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog

from broker import (
    AuditSink,
    Delivery,
    Handler,
    Opened,
    PermanentFailure,
    Publisher,
    Sealed,
    check_body_binding,
    derived_event_id,
    extend_actor,
    make_audit_event,
)
from schemas import (
    JobCompleted,
    JobFailed,
    JobProgress,
    JobSubmitted,
    ParseCompleted,
    ParseFailed,
    ParseRequested,
    WireMessage,
)
from store import InvalidTransition, Job, JobStore, NewResult, ResultChunk

__all__ = ["WorkerHandlers", "parse_request_for"]

_log = structlog.get_logger("sealflow.worker")


class WorkerHandlers:
    """Handlers bound to the worker's store, publisher and audit sink.

    Any :class:`~broker.Publisher` will do: the daemon's, or a
    :class:`~broker.RecordingPublisher` in unit tests.
    """

    def __init__(self, store: JobStore, publisher: Publisher, audit: AuditSink) -> None:
        self.store = store
        self.publisher = publisher
        self.audit = audit

    def routes(self) -> dict[str, Handler]:
        """Message type → handler, for the consumer of ``worker.jobs``."""
        return {
            "job.submitted": self.on_job_submitted,
            "parse.completed": self.on_parse_completed,
            "parse.failed": self.on_parse_failed,
        }

    async def on_job_submitted(self, opened: Opened[JobSubmitted], delivery: Delivery) -> None:
        """Record the job as processing and ask the parser for it, acting for the same user."""
        job = opened.message
        check_body_binding(opened.claims, job_id=job.job_id, owner=job.owner)
        if await self.store.get(job.job_id) is None:
            # The gateway records a job before publishing it and deletes the record when the
            # publish is not confirmed (its client got 503). The broker may have had the
            # message all the same: it must not come back as a job nobody was told about.
            raise PermanentFailure(
                "no such job: its upload was withdrawn when its publish was not confirmed",
                reason="job_unknown",
            )
        try:
            moved = await self.store.transition(job.job_id, "processing")
        except InvalidTransition:
            _log.info("job.already_finished")
            return
        handled = f"job.submitted.handled:{opened.claims.jti}"
        if (
            not moved
            and await self.store.was_processed(f"audit.job.started:{job.job_id}")
            and not await self.store.was_processed(handled)
        ):
            # The job was started to the end under another envelope: this fresh one is the
            # gateway asking again (an admin replayed the job's dead-lettered parse request),
            # and only the worker may seal a parse request. A redelivery of it asks nothing.
            await self._rerequest_for_gateway(opened)
            await self.store.mark_processed(handled)
            return
        # Not only when this delivery made the transition: the ledger sends it once, and a
        # publish that was not confirmed the first time goes out on the retry.
        await self._send_once(
            f"progress.processing:{job.job_id}",
            JobProgress(job_id=job.job_id, owner=job.owner, state="processing", at=_now()),
            aud="gateway",
            opened=opened,
        )
        await self._send_once(
            f"parse.requested:{job.job_id}",
            parse_request_for(job),
            aud="parser",
            opened=opened,
        )
        # Before the start is recorded as audited: the envelope that started a job is never
        # taken for the gateway asking again, even when it comes back after a crash here.
        await self.store.mark_processed(handled)
        # Not only when this delivery started it: a worker killed after the transition and
        # before this line must still record it when the message comes back.
        audited = f"audit.job.started:{job.job_id}"
        if not await self.store.was_processed(audited):
            await self._audit(opened, "job.started", "process", "success")
            await self.store.mark_processed(audited)

    async def on_parse_completed(self, opened: Opened[ParseCompleted], delivery: Delivery) -> None:
        """Store the result (once), mark the job done, tell the gateway."""
        result = opened.message
        job = await self._job_for(opened, result.job_id)
        if job is None:
            return
        if job.state == "failed":
            # The sweeper gave up on it first (parse_timeout): a late result does not revive it.
            _log.warning("job.result_after_final_state", state=job.state)
            return
        await self.store.store_result(
            result.job_id,
            NewResult(
                text=result.text,
                metadata=dict(result.metadata),
                chunks=tuple(
                    ResultChunk(index=c.index, start=c.start, end=c.end, page=c.page)
                    for c in result.chunks
                ),
                pages=result.pages,
                parser=result.parser,
            ),
        )
        try:
            await self.store.transition(result.job_id, "done")
        except InvalidTransition:
            _log.warning("job.result_after_final_state", state=job.state)
            return
        await self._send_once(
            f"job.completed:{result.job_id}",
            JobCompleted(
                job_id=result.job_id,
                owner=job.owner,
                finished_at=_now(),
                chars=len(result.text),
                chunks=len(result.chunks),
                pages=result.pages,
                parser=result.parser,
            ),
            aud="gateway",
            opened=opened,
            audit=("job.completed", "complete", "success", None),
        )

    async def on_parse_failed(self, opened: Opened[ParseFailed], delivery: Delivery) -> None:
        """Mark the job failed with the parser's reason, tell the gateway."""
        failure = opened.message
        job = await self._job_for(opened, failure.job_id)
        if job is None:
            return
        try:
            await self.store.transition(
                failure.job_id, "failed", detail=failure.detail, error_reason=failure.reason
            )
        except InvalidTransition:
            _log.warning("job.failure_after_final_state", state=job.state)
            return
        await self._send_once(
            f"job.failed:{failure.job_id}",
            JobFailed(
                job_id=failure.job_id,
                owner=job.owner,
                reason=failure.reason,
                detail=failure.detail,
                finished_at=_now(),
            ),
            aud="gateway",
            opened=opened,
            audit=("job.failed", "complete", "failure", failure.reason),
        )

    async def _rerequest_for_gateway(self, opened: Opened[JobSubmitted]) -> None:
        """Claim and send one more parse request for a job still ``processing``, audited."""
        job = opened.message
        number = await self.store.claim_parse_request(
            job.job_id, requested_before=_now(), rerequests_below=None
        )
        if number is None:
            _log.info("job.rerequest_not_needed")
            return
        sealed = await self.publisher.reply(opened, parse_request_for(job), "parser")
        await self._audit(
            opened,
            "job.parse_rerequested",
            "rerequest",
            "success",
            "gateway_asked",
            jti=sealed.jti,
            detail=f"re-sealed for the gateway's request {opened.claims.jti}: request {number}",
        )
        _log.warning("job.parse_rerequested", jti=sealed.jti, rerequest=number)

    async def fail_job(self, job: Job, reason: str, detail: str) -> None:
        """Tell the gateway (once) that a job the worker failed by itself failed, audited."""
        await self._send_once(
            f"job.failed:{job.job_id}",
            JobFailed(
                job_id=job.job_id, owner=job.owner, reason=reason, detail=detail, finished_at=_now()
            ),
            aud="gateway",
            job=job,
            audit=("job.failed", "complete", "failure", reason),
            detail=detail,
        )

    async def audit_decision(
        self,
        job: Job,
        type_: str,
        action: str,
        outcome: str,
        *,
        reason: str | None,
        jti: str,
        detail: str | None,
    ) -> None:
        """Audit a decision the worker took by itself about ``job`` (no message asked for it)."""
        await self.audit.emit(
            make_audit_event(
                event_id=derived_event_id("worker", type_, job.job_id, jti),
                source="worker",
                type=type_,
                action=action,
                outcome=outcome,
                actor="worker",
                subject=job.owner,
                reason=reason,
                job=job.job_id,
                trace=job.trace,
                jti=jti,
                detail=detail,
            )
        )

    async def _job_for(self, opened: Opened[Any], job_id: str) -> Job | None:
        """The stored job a parse result is about, once the envelope is shown to speak for it."""
        job = await self.store.get(job_id)
        check_body_binding(opened.claims, job_id=job_id, owner=job.owner if job else None)
        if job is None:
            _log.warning("job.unknown", job_id=job_id)
        return job

    async def _send_once(
        self,
        key: str,
        message: WireMessage,
        *,
        aud: str,
        opened: Opened[Any] | None = None,
        job: Job | None = None,
        audit: tuple[str, str, str, str | None] | None = None,
        detail: str | None = None,
    ) -> None:
        """Publish an event unless the ledger says it went out; record it once confirmed.

        As the next hop of ``opened``, or (the sweeper's) for ``job``'s owner on the worker's
        own account. A crash between the confirm and the ledger write sends the event again
        on redelivery: events are at-least-once and their receivers are idempotent.
        """
        if await self.store.was_processed(key):
            return
        if opened is not None:
            await self.publisher.reply(opened, message, aud)
            if audit is not None:
                await self._audit(opened, *audit, detail=detail)
        else:
            assert job is not None, "an event sent on the worker's own account names its job"
            sealed = await self._send_for(job, message, aud)
            if audit is not None:
                type_, action, outcome, reason = audit
                await self.audit_decision(
                    job, type_, action, outcome, reason=reason, jti=sealed.jti, detail=detail
                )
        await self.store.mark_processed(key)

    async def _send_for(self, job: Job, message: WireMessage, aud: str) -> Sealed:
        """Seal ``message`` for ``aud`` on the worker's own account, for ``job``'s owner."""
        return await self.publisher.send(
            message,
            aud=aud,
            sub=job.owner,
            job=job.job_id,
            act=extend_actor(None, "worker"),
            trace=job.trace,
        )

    async def send_parse_request(self, job: Job) -> Sealed:
        """A freshly sealed ``parse.requested`` for ``job`` on the worker's own account."""
        return await self._send_for(job, parse_request_for(job), "parser")

    async def _audit(
        self,
        opened: Opened[Any],
        type_: str,
        action: str,
        outcome: str,
        reason: str | None = None,
        *,
        jti: str | None = None,
        detail: str | None = None,
    ) -> None:
        claims = opened.claims
        await self.audit.emit(
            make_audit_event(
                # One id per job and decision: a re-emission after a crash is deduplicated.
                event_id=derived_event_id("worker", type_, *_about(claims.job or claims.jti, jti)),
                source="worker",
                type=type_,
                action=action,
                outcome=outcome,
                actor="worker",
                subject=claims.sub,
                reason=reason,
                job=claims.job,
                trace=claims.trace,
                jti=jti or claims.jti,
                detail=detail,
            )
        )


def _about(job_or_jti: str, jti: str | None) -> tuple[str, ...]:
    """What an audit event's id is derived from: the job, and the message when one names it."""
    return (job_or_jti,) if jti is None else (job_or_jti, jti)


def parse_request_for(job: Job | JobSubmitted) -> ParseRequested:
    """The ``parse.requested`` body for a job: its blob, name and type, asked now."""
    return ParseRequested(
        job_id=job.job_id,
        blob_sha256=job.blob_sha256,
        filename=job.filename,
        content_type=job.content_type,
        size=job.size,
        requested_at=_now(),
    )


def _now() -> datetime:
    return datetime.now(UTC)
