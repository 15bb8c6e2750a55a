"""The stuck-job sweeper without a broker: re-requests sealed by the worker, bounded, audited."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from handler_testing import HandlerRig
from sealflow_testing import job_message

from broker import BrokerSettings, EnvelopeError, PermanentFailure
from schemas import JobFailed, JobSubmitted, ParseCompleted, ParseRequested
from store import JobStore, NewJob, open_store
from workers import StuckJobSweeper, WorkerHandlers, WorkerSettings
from workers.daemon import check_sweep_settings
from workers.sweeper import PARSE_TIMEOUT

# Every look finds a job stuck once its last request is a microsecond old: no waiting.
_EAGER = WorkerSettings(stuck_after=1e-6, max_rerequests=2)


@pytest.fixture
def sweeper(handlers: WorkerHandlers) -> StuckJobSweeper:
    """A sweeper for which every processing job is already stuck."""
    return StuckJobSweeper(handlers, _EAGER)


async def _submitted(store: JobStore, rig: HandlerRig, handlers: WorkerHandlers) -> JobSubmitted:
    """A job the worker took and asked the parser for (whose request then went unanswered)."""
    message = job_message("alice").model_copy(update={"trace": None})
    await store.create(
        NewJob(
            job_id=message.job_id,
            owner="alice",
            filename=message.filename,
            content_type=message.content_type,
            size=message.size,
            blob_sha256=message.blob_sha256,
            trace="0af7651916cd43dd8448eb211c80319c",
        )
    )
    await handlers.on_job_submitted(*rig.deliver(message, sender="gateway"))
    rig.publisher.published.clear()
    return message


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


async def test_a_stuck_job_gets_a_fresh_parse_request_sealed_by_the_worker(
    store: JobStore, rig: HandlerRig, handlers: WorkerHandlers, sweeper: StuckJobSweeper
) -> None:
    """The re-request opens at the parser: worker → parser, for the owner, with the job's trace."""
    job = await _submitted(store, rig, handlers)
    assert await sweeper.sweep() == 1
    [request] = rig.sent("parse.requested")
    assert isinstance(request.message, ParseRequested)
    assert request.message.blob_sha256 == job.blob_sha256
    claims = request.claims
    assert (claims.iss, claims.aud, claims.sub, claims.job) == (
        "worker",
        "parser",
        "alice",
        job.job_id,
    )
    assert claims.trace == "0af7651916cd43dd8448eb211c80319c"
    assert claims.act is not None
    assert claims.act.sub == "worker"
    [event] = rig.audit_events()
    assert (event.type, event.outcome, event.job, event.jti) == (
        "job.parse_rerequested",
        "success",
        job.job_id,
        claims.jti,
    )
    stored = await store.get(job.job_id)
    assert stored is not None
    assert stored.state == "processing"


async def test_after_the_last_request_the_job_fails_with_parse_timeout(
    store: JobStore, rig: HandlerRig, handlers: WorkerHandlers, sweeper: StuckJobSweeper
) -> None:
    """Two re-requests, then ``failed``/``parse_timeout`` and ``job.failed`` once; then quiet."""
    job = await _submitted(store, rig, handlers)
    assert [await sweeper.sweep() for _ in range(4)] == [1, 1, 1, 0]
    assert rig.publisher.types.count("parse.requested") == 2
    [failed] = rig.sent("job.failed")
    assert isinstance(failed.message, JobFailed)
    assert failed.message.reason == PARSE_TIMEOUT
    assert (failed.claims.iss, failed.claims.aud, failed.claims.sub) == (
        "worker",
        "gateway",
        "alice",
    )
    stored = await store.get(job.job_id)
    assert stored is not None
    assert (stored.state, stored.error_reason) == ("failed", PARSE_TIMEOUT)
    types = [(e.type, e.reason) for e in rig.audit_events()]
    assert types == [
        ("job.parse_rerequested", "parse_unanswered"),
        ("job.parse_rerequested", "parse_unanswered"),
        ("job.failed", PARSE_TIMEOUT),
    ]


async def test_no_rerequests_configured_fails_at_once(
    store: JobStore, rig: HandlerRig, handlers: WorkerHandlers
) -> None:
    """``max_rerequests = 0``: the first look fails the stuck job."""
    job = await _submitted(store, rig, handlers)
    sweeper = StuckJobSweeper(handlers, WorkerSettings(stuck_after=1e-6, max_rerequests=0))
    assert await sweeper.sweep() == 1
    assert rig.publisher.types == ["job.failed", "audit.job.failed"]
    stored = await store.get(job.job_id)
    assert stored is not None
    assert stored.state == "failed"


async def test_a_job_not_yet_stuck_is_left_alone(
    store: JobStore, rig: HandlerRig, handlers: WorkerHandlers
) -> None:
    """The default threshold (six minutes) does not touch a job that just started."""
    await _submitted(store, rig, handlers)
    assert await StuckJobSweeper(handlers, WorkerSettings()).sweep() == 0
    assert rig.publisher.published == []


async def test_two_replicas_sweeping_at_once_send_one_request(
    store: JobStore, rig: HandlerRig, handlers: WorkerHandlers, tmp_path: Path
) -> None:
    """Two workers on one database look at once: the store's claim lets exactly one re-request.

    Both take their cutoff before either claims (each awaits its query first), and a claim
    records a request time after both cutoffs, so the loser's conditional update finds nothing.
    """
    await _submitted(store, rig, handlers)
    other_store = await open_store(None, tmp_path)
    try:
        other = StuckJobSweeper(WorkerHandlers(other_store, rig.publisher, rig.audit), _EAGER)
        mine = StuckJobSweeper(handlers, _EAGER)
        acted = await asyncio.gather(mine.sweep(), other.sweep())
    finally:
        await other_store.close()
    assert sorted(acted) == [0, 1]
    assert rig.publisher.types.count("parse.requested") == 1


async def test_a_late_genuine_result_after_the_timeout_is_absorbed(
    store: JobStore, rig: HandlerRig, handlers: WorkerHandlers
) -> None:
    """The sweeper failed the job first: the late ``parse.completed`` changes nothing."""
    job = await _submitted(store, rig, handlers)
    await StuckJobSweeper(handlers, WorkerSettings(stuck_after=1e-6, max_rerequests=0)).sweep()
    rig.publisher.published.clear()
    await handlers.on_parse_completed(
        *rig.deliver(_completed(job.job_id), sender="parser", act=("worker", "parser"))
    )
    assert rig.publisher.published == []
    stored = await store.get(job.job_id)
    assert stored is not None
    assert stored.state == "failed"
    assert await store.get_result(job.job_id) is None


async def test_a_result_first_leaves_nothing_to_sweep(
    store: JobStore, rig: HandlerRig, handlers: WorkerHandlers, sweeper: StuckJobSweeper
) -> None:
    """A re-requested job whose result then arrives is done; later looks ignore it, and a
    second result (the answer to the other request) is absorbed by the ledger."""
    job = await _submitted(store, rig, handlers)
    await sweeper.sweep()
    for _ in range(2):
        await handlers.on_parse_completed(
            *rig.deliver(_completed(job.job_id), sender="parser", act=("worker", "parser"))
        )
    assert rig.publisher.types.count("job.completed") == 1
    assert await sweeper.sweep() == 0
    stored = await store.get(job.job_id)
    assert stored is not None
    assert stored.state == "done"


async def test_the_gateway_asking_again_gets_a_parse_request_resealed_by_the_worker(
    store: JobStore, rig: HandlerRig, handlers: WorkerHandlers
) -> None:
    """An admin's replay reaches the worker as a fresh gateway envelope; the worker re-seals."""
    job = await _submitted(store, rig, handlers)
    await handlers.on_job_submitted(*rig.deliver(job, sender="gateway", act=("admin", "gateway")))
    [request] = rig.sent("parse.requested")
    claims = request.claims
    assert (claims.iss, claims.aud, claims.sub) == ("worker", "parser", "alice")
    assert claims.act is not None
    assert claims.act.sub == "worker"
    [event] = rig.audit_events()
    assert (event.type, event.reason) == ("job.parse_rerequested", "gateway_asked")


async def test_a_forged_request_to_reseal_is_refused(
    store: JobStore, rig: HandlerRig, handlers: WorkerHandlers
) -> None:
    """Only the gateway may ask, and only for the job's owner: the parser's key or another
    user's name gets no parse request."""
    job = await _submitted(store, rig, handlers)
    # The parser's key, with the scope the gateway would use: the policy refuses the sender.
    forged = rig.env.sealer("parser").seal_body(
        job.model_dump_json().encode(),
        typ="job.submitted",
        aud="worker",
        sub="alice",
        job=job.job_id,
        scope="jobs:process",
    )
    with pytest.raises(EnvelopeError):
        rig.env.opener("worker").open(
            forged.body, forged.headers(), message_id=forged.jti, message_type=forged.typ
        )
    with pytest.raises(PermanentFailure):
        await handlers.on_job_submitted(*rig.deliver(job, sender="gateway", sub="mallory"))
    assert rig.publisher.published == []


async def test_a_finished_job_is_not_resealed(
    store: JobStore, rig: HandlerRig, handlers: WorkerHandlers
) -> None:
    """The gateway asking for a job that already failed changes nothing."""
    job = await _submitted(store, rig, handlers)
    await store.transition(job.job_id, "failed", error_reason=PARSE_TIMEOUT)
    await handlers.on_job_submitted(*rig.deliver(job, sender="gateway"))
    assert rig.publisher.published == []


def test_a_threshold_shorter_than_an_envelope_lifetime_is_refused(tmp_path: Path) -> None:
    """A request may wait an envelope lifetime in the queue: sweeping sooner would double it."""
    broker = BrokerSettings(envelope_lifetime=300, data_dir=tmp_path, keys_dir=tmp_path)
    with pytest.raises(ValueError, match="STUCK_AFTER"):
        check_sweep_settings(broker, WorkerSettings(stuck_after=300))
    check_sweep_settings(broker, WorkerSettings())
