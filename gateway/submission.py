"""The one upload path: a stored document becomes a job, recorded, published and audited.

The gateway's ``POST /api/jobs``, ``sealflow submit`` and the soak bench all put documents on
the pipeline through :func:`submit_document`; it takes no ``web.Request``. The job is
recorded ``queued`` first, then ``job.submitted`` is sealed for the worker (acting for the
owner, the gateway in the actor chain) and published with confirms; if the publish fails the
record is removed again, so no job waits for a message that was never sent. The decision is
then audited as ``job.submitted``; an audit event that cannot be published is logged, never
turned into a failure of a submission that has happened.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import structlog

from broker import AuditSink, BrokerError, Publisher, PublishFailed, Sealed, make_audit_event
from broker.tracing import current_trace_id
from schemas import JobSubmitted
from store import BlobStore, JobState, JobStore, NewJob

__all__ = ["IN_FLIGHT_STATES", "Document", "Submitted", "jobs_in_flight", "submit_document"]

_log = structlog.get_logger("sealflow.gateway.submission")

IN_FLIGHT_STATES: Final[tuple[JobState, ...]] = ("queued", "processing")
"""The states of a job the pipeline still owes an answer for."""


@dataclass(frozen=True, slots=True)
class Document:
    """A stored, checked file that is to become one job."""

    filename: str
    content_type: str
    size: int
    blob_sha256: str


@dataclass(frozen=True, slots=True)
class Submitted:
    """A job recorded and published: its id and the sealed ``job.submitted`` that went out."""

    job_id: str
    filename: str
    sealed: Sealed


async def submit_document(
    store: JobStore,
    publisher: Publisher,
    audit: AuditSink,
    *,
    owner: str,
    document: Document,
    blobs: BlobStore,
    via: str,
    attempts: int = 1,
    retry_delay: float = 0.5,
) -> Submitted:
    """Record one job for ``document`` with its blob, read from ``blobs`` where the upload
    staged it (``create_with_blob``: one transaction on PostgreSQL, so a parser on another host
    reads the blob's rows), publish ``job.submitted`` and audit it.

    ``via`` names the way in for the audit detail (``the gateway``, ``sealflow submit``). A
    publish that fails is tried ``attempts`` times in all, ``retry_delay`` seconds apart; then
    the record is deleted and :class:`broker.PublishFailed` raised.
    """
    # The caller's trace (a request's traceparent or its span's), else a fresh one.
    job_id, trace = secrets.token_hex(16), current_trace_id() or secrets.token_hex(16)
    data = await asyncio.to_thread(blobs.read, document.blob_sha256, max_bytes=document.size)
    await store.create_with_blob(
        NewJob(
            job_id=job_id,
            owner=owner,
            filename=document.filename,
            content_type=document.content_type,
            size=document.size,
            blob_sha256=document.blob_sha256,
            trace=trace,
        ),
        data,
    )
    message = JobSubmitted(
        job_id=job_id,
        owner=owner,
        filename=document.filename,
        content_type=document.content_type,
        size=document.size,
        blob_sha256=document.blob_sha256,
        submitted_at=datetime.now(UTC),
    )
    try:
        sealed = await _publish(publisher, message, owner, trace, attempts, retry_delay)
    except BaseException:
        await store.delete(job_id)
        raise
    event = make_audit_event(
        source="gateway",
        type="job.submitted",
        action="submit",
        outcome="success",
        actor=owner,
        subject=owner,
        job=job_id,
        trace=trace,
        jti=sealed.jti,
        detail=(f"{document.filename} ({document.content_type}, {document.size} bytes) via {via}"),
    )
    try:
        await audit.emit(event)
    except BrokerError as error:
        _log.error("audit.emit_failed", type=event.type, job=job_id, error=str(error))
    return Submitted(job_id=job_id, filename=document.filename, sealed=sealed)


async def _publish(
    publisher: Publisher,
    message: JobSubmitted,
    owner: str,
    trace: str,
    attempts: int,
    retry_delay: float,
) -> Sealed:
    """``job.submitted`` sealed for the worker, published; a fresh envelope per attempt (a
    copy that did reach the broker is absorbed by the worker's idempotence)."""
    for attempt in range(1, attempts + 1):
        try:
            return await publisher.send(
                message,
                typ="job.submitted",
                aud="worker",
                sub=owner,
                job=message.job_id,
                act={"sub": "gateway"},
                trace=trace,
            )
        except PublishFailed as error:
            if attempt >= attempts:
                raise
            _log.warning("submission.publish_retry", job=message.job_id, error=error.detail)
            await asyncio.sleep(retry_delay)
    raise PublishFailed("no publish attempt was made")


async def jobs_in_flight(store: JobStore, owner: str, *, at_most: int) -> int:
    """How many of ``owner``'s jobs are queued or processing, counted up to ``at_most``."""
    counted = 0
    for state in IN_FLIGHT_STATES:
        counted += len(await store.list(owner=owner, state=state, limit=at_most - counted))
        if counted >= at_most:
            break
    return counted
