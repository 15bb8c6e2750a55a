"""The job state machine: allowed and forbidden moves, idempotency, races, failure details."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from schemas.limits import MAX_DETAIL_CHARS
from store import (
    InvalidTransition,
    JobNotFound,
    JobState,
    JobStore,
    NewJob,
)

MakeJob = Callable[..., NewJob]

# The path from `queued` that puts a job in each state.
_PATH_TO: dict[JobState, list[JobState]] = {
    "queued": [],
    "processing": ["processing"],
    "done": ["processing", "done"],
    "failed": ["failed"],
}
_ALLOWED = {("queued", "processing"), ("processing", "done"), ("processing", "failed")}
_ALLOWED.add(("queued", "failed"))
_ALL_STATES: list[JobState] = ["queued", "processing", "done", "failed"]
_PAIRS = [(a, b) for a in _ALL_STATES for b in _ALL_STATES]


async def _job_in(store: JobStore, new_job: MakeJob, state: JobState) -> str:
    job = await store.create(new_job())
    for step in _PATH_TO[state]:
        assert await store.transition(job.job_id, step) is True
    return job.job_id


@pytest.mark.parametrize(("start", "to"), sorted(_ALLOWED))
async def test_allowed_transition_changes_state_and_appends_event(
    store: JobStore, new_job: MakeJob, start: JobState, to: JobState
) -> None:
    job_id = await _job_in(store, new_job, start)
    assert await store.transition(job_id, to, detail=f"now {to}") is True
    job = await store.get(job_id)
    assert job is not None
    assert job.state == to
    assert job.updated_at >= job.created_at
    events = await store.events(job_id)
    assert events[-1].state == to
    assert events[-1].detail == f"now {to}"
    assert events[-1].at == job.updated_at
    if to in ("done", "failed"):
        assert job.finished_at == job.updated_at
    else:
        assert job.finished_at is None


@pytest.mark.parametrize(
    ("start", "to"), [pair for pair in _PAIRS if pair not in _ALLOWED and pair[0] != pair[1]]
)
async def test_forbidden_transition_raises_and_changes_nothing(
    store: JobStore, new_job: MakeJob, start: JobState, to: JobState
) -> None:
    job_id = await _job_in(store, new_job, start)
    before = await store.get(job_id)
    events_before = await store.events(job_id)
    with pytest.raises(InvalidTransition) as info:
        await store.transition(job_id, to)
    assert info.value.reason == "invalid_transition"
    assert await store.get(job_id) == before
    assert await store.events(job_id) == events_before


@pytest.mark.parametrize("state", _ALL_STATES)
async def test_same_state_transition_is_a_no_op_returning_false(
    store: JobStore, new_job: MakeJob, state: JobState
) -> None:
    job_id = await _job_in(store, new_job, state)
    before = await store.get(job_id)
    events_before = await store.events(job_id)
    assert await store.transition(job_id, state) is False
    assert await store.get(job_id) == before
    assert await store.events(job_id) == events_before


async def test_transition_of_unknown_job_raises_job_not_found(store: JobStore) -> None:
    with pytest.raises(JobNotFound) as info:
        await store.transition("ghost", "processing")
    assert info.value.reason == "job_not_found"


async def test_failed_keeps_reason_and_detail(store: JobStore, new_job: MakeJob) -> None:
    job_id = await _job_in(store, new_job, "processing")
    assert await store.transition(
        job_id, "failed", error_reason="parse_timeout", detail="took longer than 30 s"
    )
    job = await store.get(job_id)
    assert job is not None
    assert job.error_reason == "parse_timeout"
    assert job.error_detail == "took longer than 30 s"


async def test_long_detail_is_capped(store: JobStore, new_job: MakeJob) -> None:
    job_id = await _job_in(store, new_job, "queued")
    await store.transition(job_id, "failed", error_reason="boom", detail="x" * 100_000)
    job = await store.get(job_id)
    assert job is not None
    assert job.error_detail is not None
    assert len(job.error_detail) == MAX_DETAIL_CHARS
    assert job.error_detail.endswith("…")


async def test_error_reason_only_for_failed(store: JobStore, new_job: MakeJob) -> None:
    job_id = await _job_in(store, new_job, "queued")
    with pytest.raises(ValueError, match="error_reason"):
        await store.transition(job_id, "processing", error_reason="nope")


async def test_unknown_target_state_raises_value_error(store: JobStore, new_job: MakeJob) -> None:
    job_id = await _job_in(store, new_job, "queued")
    with pytest.raises(ValueError, match="state"):
        await store.transition(job_id, "archived")  # type: ignore[arg-type]


async def _race(first: JobStore, second: JobStore, job_id: str) -> list[object]:
    outcomes = await asyncio.gather(
        first.transition(job_id, "done"),
        second.transition(job_id, "failed", error_reason="lost"),
        return_exceptions=True,
    )
    return list(outcomes)


def _exactly_one_won(outcomes: list[object]) -> None:
    assert sorted(type(o).__name__ for o in outcomes) == ["InvalidTransition", "bool"]
    assert [o for o in outcomes if isinstance(o, bool)] == [True]


async def test_concurrent_terminal_transitions_exactly_one_wins(
    store: JobStore, new_job: MakeJob
) -> None:
    for _ in range(20):
        job_id = await _job_in(store, new_job, "processing")
        outcomes = await _race(store, store, job_id)
        _exactly_one_won(outcomes)
        job = await store.get(job_id)
        assert job is not None
        winner: JobState = "done" if outcomes[0] is True else "failed"
        assert job.state == winner
        assert [e.state for e in await store.events(job_id)][-1] == winner
        assert len(await store.events(job_id)) == 3


async def test_concurrent_transitions_across_connections_exactly_one_wins(
    open_store: Callable[[], Awaitable[JobStore]], new_job: MakeJob
) -> None:
    async with await open_store() as one, await open_store() as two:
        for _ in range(10):
            job_id = await _job_in(one, new_job, "processing")
            _exactly_one_won(await _race(one, two, job_id))
            assert len(await two.events(job_id)) == 3
