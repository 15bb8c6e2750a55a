"""The sweeper's store query and claim: stuck ``processing`` jobs, and one claim per request."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from store import JobStore, NewJob

OpenStore = Callable[[], Awaitable[JobStore]]


def _later() -> datetime:
    return datetime.now(UTC) + timedelta(seconds=1)


async def _processing(store: JobStore, new_job: Callable[..., NewJob]) -> str:
    job = await store.create(new_job())
    await store.transition(job.job_id, "processing")
    return job.job_id


async def test_only_processing_jobs_older_than_the_cutoff_are_stuck(
    store: JobStore, new_job: Callable[..., NewJob]
) -> None:
    """Queued and finished jobs are never stuck; a processing one is once the cutoff passes it."""
    await store.create(new_job())
    done = await _processing(store, new_job)
    await store.transition(done, "done")
    stuck = await _processing(store, new_job)
    before = datetime.now(UTC) - timedelta(hours=1)
    assert await store.stuck_jobs(requested_before=before) == []
    found = await store.stuck_jobs(requested_before=_later())
    assert [(s.job.job_id, s.rerequests) for s in found] == [(stuck, 0)]
    assert found[0].requested_at == found[0].job.updated_at


async def test_a_claim_counts_the_request_and_restarts_the_clock(
    store: JobStore, new_job: Callable[..., NewJob]
) -> None:
    """After a claim the job is not stuck until its new request is older than the cutoff."""
    job_id = await _processing(store, new_job)
    cutoff = datetime.now(UTC)
    assert await store.claim_parse_request(job_id, requested_before=cutoff, rerequests_below=2) == 1
    # The same cutoff no longer sees it: the request was just made.
    assert (
        await store.claim_parse_request(job_id, requested_before=cutoff, rerequests_below=2) is None
    )
    found = await store.stuck_jobs(requested_before=_later() + timedelta(seconds=1))
    assert [(s.job.job_id, s.rerequests) for s in found] == [(job_id, 1)]
    assert found[0].requested_at > found[0].job.updated_at


async def test_the_bound_stops_claims_and_none_lifts_it(
    store: JobStore, new_job: Callable[..., NewJob]
) -> None:
    """``rerequests_below`` bounds the sweeper; an explicit replay (None) is not bounded."""
    job_id = await _processing(store, new_job)
    claims = [
        await store.claim_parse_request(job_id, requested_before=_later(), rerequests_below=2)
        for _ in range(3)
    ]
    assert claims == [1, 2, None]
    assert (
        await store.claim_parse_request(job_id, requested_before=_later(), rerequests_below=None)
        == 3
    )


async def test_no_claim_on_a_finished_queued_or_unknown_job(
    store: JobStore, new_job: Callable[..., NewJob]
) -> None:
    """A job that left ``processing`` (a late result won) is never re-requested."""
    queued = (await store.create(new_job())).job_id
    failed = await _processing(store, new_job)
    await store.transition(failed, "failed", error_reason="parse_timeout")
    for job_id in (queued, failed, "no-such-job"):
        got = await store.claim_parse_request(
            job_id, requested_before=_later(), rerequests_below=None
        )
        assert got is None


async def test_concurrent_claims_from_two_handles_give_one_request(
    open_store: OpenStore, new_job: Callable[..., NewJob]
) -> None:
    """Two worker replicas (two store handles) sweeping at once: exactly one claims."""
    async with await open_store() as first, await open_store() as second:
        job_id = await _processing(first, new_job)
        cutoff = datetime.now(UTC)
        results = await asyncio.gather(
            *(
                handle.claim_parse_request(job_id, requested_before=cutoff, rerequests_below=5)
                for handle in (first, second, first, second)
            )
        )
    assert sorted(results, key=lambda r: r or 0) == [None, None, None, 1]


async def test_deleting_a_job_removes_its_requests(
    store: JobStore, new_job: Callable[..., NewJob]
) -> None:
    """The request count goes with its job."""
    job_id = await _processing(store, new_job)
    await store.claim_parse_request(job_id, requested_before=_later(), rerequests_below=None)
    assert await store.delete(job_id)
    assert await store.stuck_jobs(requested_before=_later()) == []


async def test_bad_arguments_are_refused(store: JobStore) -> None:
    """Naive times, a zero limit and a negative bound are programming errors."""
    with pytest.raises(ValueError, match="timezone"):
        await store.stuck_jobs(requested_before=datetime(2020, 1, 1))
    with pytest.raises(ValueError, match="limit"):
        await store.stuck_jobs(requested_before=_later(), limit=0)
    with pytest.raises(ValueError, match="negative"):
        await store.claim_parse_request("j", requested_before=_later(), rerequests_below=-1)
