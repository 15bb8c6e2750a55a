"""The worker's handlers without a broker: genuine envelopes in, sealed replies recorded."""

from __future__ import annotations

import secrets

import pytest
from handler_testing import HandlerRig
from sealflow_testing import job_message

from broker import PermanentFailure, PublishFailed
from schemas import JobSubmitted, ParseCompleted, ParseFailed, ParseRequested
from store import JobStore, NewJob
from workers import WorkerHandlers


async def _queued(store: JobStore, owner: str = "alice") -> str:
    message = job_message(owner)
    await store.create(
        NewJob(
            job_id=message.job_id,
            owner=owner,
            filename=message.filename,
            content_type=message.content_type,
            size=message.size,
            blob_sha256=message.blob_sha256,
        )
    )
    return message.job_id


def _submitted(job_id: str, owner: str = "alice") -> JobSubmitted:
    return job_message(owner).model_copy(update={"job_id": job_id})


async def test_a_submitted_job_is_processing_and_its_parse_is_requested_for_the_same_user(
    store: JobStore, rig: HandlerRig, handlers: WorkerHandlers
) -> None:
    """The parse request is sealed by the worker for the parser, acting for alice."""
    job_id = await _queued(store)
    await handlers.on_job_submitted(*rig.deliver(_submitted(job_id), sender="gateway"))
    assert rig.publisher.types == ["job.progress", "parse.requested", "audit.job.started"]
    [request] = rig.sent("parse.requested")
    assert isinstance(request.message, ParseRequested)
    claims = request.claims
    assert (claims.iss, claims.aud, claims.sub, claims.job) == ("worker", "parser", "alice", job_id)
    assert claims.act is not None
    assert claims.act.sub == "worker"
    [event] = rig.audit_events()
    assert (event.type, event.job, event.subject) == ("job.started", job_id, "alice")
    job = await store.get(job_id)
    assert job is not None
    assert job.state == "processing"


async def test_a_redelivered_submission_sends_nothing_twice(
    store: JobStore, rig: HandlerRig, handlers: WorkerHandlers
) -> None:
    """The ledger remembers what went out: the handler is idempotent."""
    job_id = await _queued(store)
    opened, delivery = rig.deliver(_submitted(job_id), sender="gateway")
    await handlers.on_job_submitted(opened, delivery)
    await handlers.on_job_submitted(opened, delivery)
    assert rig.publisher.types == ["job.progress", "parse.requested", "audit.job.started"]


async def test_an_unconfirmed_publish_is_sent_again_on_the_retry(
    store: JobStore, rig: HandlerRig, handlers: WorkerHandlers
) -> None:
    """A publish that fails is not marked sent: the retry sends it, once."""
    job_id = await _queued(store)
    opened, delivery = rig.deliver(_submitted(job_id), sender="gateway")
    rig.publisher.fail_next = 1  # the broker does not confirm job.progress
    with pytest.raises(PublishFailed):
        await handlers.on_job_submitted(opened, delivery)
    await handlers.on_job_submitted(opened, delivery)
    assert rig.publisher.types == ["job.progress", "parse.requested", "audit.job.started"]


async def test_a_submission_for_another_owner_is_refused(
    store: JobStore, rig: HandlerRig, handlers: WorkerHandlers
) -> None:
    """The body's owner must be the envelope's subject."""
    job_id = await _queued(store, owner="bob")
    opened, delivery = rig.deliver(_submitted(job_id, owner="bob"), sender="gateway", sub="alice")
    with pytest.raises(PermanentFailure) as caught:
        await handlers.on_job_submitted(opened, delivery)
    assert caught.value.reason == "owner_mismatch"
    assert rig.publisher.published == []


async def test_a_submission_whose_upload_was_withdrawn_is_refused(
    rig: HandlerRig, handlers: WorkerHandlers
) -> None:
    """No job record, no work: the gateway withdrew the upload."""
    opened, delivery = rig.deliver(_submitted(secrets.token_hex(16)), sender="gateway")
    with pytest.raises(PermanentFailure) as caught:
        await handlers.on_job_submitted(opened, delivery)
    assert caught.value.reason == "job_unknown"


def _completed(job_id: str) -> ParseCompleted:
    return ParseCompleted(
        job_id=job_id,
        blob_sha256="a" * 64,
        text="hello",
        metadata={},
        chunks=[],
        pages=1,
        parser="text",
        duration_ms=3,
    )


async def test_a_parse_result_is_stored_and_the_gateway_told(
    store: JobStore, rig: HandlerRig, handlers: WorkerHandlers
) -> None:
    """``parse.completed`` → result stored, job done, ``job.completed`` for the gateway."""
    job_id = await _queued(store)
    await store.transition(job_id, "processing")
    await handlers.on_parse_completed(
        *rig.deliver(_completed(job_id), sender="parser", act=("worker", "parser"))
    )
    [completed] = rig.sent("job.completed")
    assert (completed.claims.aud, completed.message.chars) == ("gateway", 5)
    assert completed.claims.act is not None
    assert completed.claims.act.sub == "worker"
    result = await store.get_result(job_id)
    assert result is not None
    assert result.text == "hello"
    [event] = rig.audit_events()
    assert (event.type, event.outcome) == ("job.completed", "success")


async def test_a_parse_failure_fails_the_job_with_the_parsers_reason(
    store: JobStore, rig: HandlerRig, handlers: WorkerHandlers
) -> None:
    """``parse.failed`` → job failed with its reason, ``job.failed`` for the gateway."""
    job_id = await _queued(store)
    await store.transition(job_id, "processing")
    failure = ParseFailed(
        job_id=job_id, blob_sha256="a" * 64, reason="malformed", detail="bad xref", permanent=True
    )
    await handlers.on_parse_failed(*rig.deliver(failure, sender="parser"))
    [failed] = rig.sent("job.failed")
    assert (failed.message.reason, failed.claims.sub) == ("malformed", "alice")
    job = await store.get(job_id)
    assert job is not None
    assert (job.state, job.error_reason) == ("failed", "malformed")


async def test_a_parse_result_in_another_users_name_is_refused(
    store: JobStore, rig: HandlerRig, handlers: WorkerHandlers
) -> None:
    """A result whose subject is not the job's owner changes nothing."""
    job_id = await _queued(store, owner="bob")
    await store.transition(job_id, "processing")
    with pytest.raises(PermanentFailure) as caught:
        await handlers.on_parse_completed(*rig.deliver(_completed(job_id), sender="parser"))
    assert caught.value.reason == "owner_mismatch"
    assert rig.publisher.published == []
    assert await store.get_result(job_id) is None
