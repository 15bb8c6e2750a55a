"""JobStore: creating, reading, listing, deleting jobs; durability across reopen; the ledger."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from store import (
    MAX_LIST_LIMIT,
    DuplicateJob,
    JobStore,
    NewJob,
    NewResult,
    ResultChunk,
    SqliteJobStore,
    StoreError,
    StoreUnavailable,
)
from store.sqlite.schema import SCHEMA_VERSION

MakeJob = Callable[..., NewJob]
OpenStore = Callable[[], Awaitable[JobStore]]


async def test_create_returns_a_queued_job_and_get_reads_it(
    store: JobStore, new_job: MakeJob
) -> None:
    before = datetime.now(UTC)
    spec = new_job(job_id="j1", owner="alice", filename="a.pdf", size=1234)
    created = await store.create(spec)
    assert created.state == "queued"
    assert created.job_id == "j1"
    assert created.owner == "alice"
    assert created.filename == "a.pdf"
    assert created.size == 1234
    assert created.blob_sha256 == spec.blob_sha256
    assert created.trace == spec.trace
    assert created.finished_at is None
    assert created.error_reason is None
    assert created.created_at.tzinfo is not None
    assert created.created_at >= before - timedelta(seconds=1)
    assert await store.get("j1") == created


async def test_get_unknown_job_is_none(store: JobStore) -> None:
    assert await store.get("nope") is None


async def test_create_records_the_queued_event(store: JobStore, new_job: MakeJob) -> None:
    job = await store.create(new_job())
    events = await store.events(job.job_id)
    assert [(e.state, e.at, e.detail) for e in events] == [("queued", job.created_at, None)]


async def test_duplicate_job_id_raises_duplicate_job(store: JobStore, new_job: MakeJob) -> None:
    await store.create(new_job(job_id="dup"))
    with pytest.raises(DuplicateJob) as info:
        await store.create(new_job(job_id="dup", owner="mallory"))
    assert isinstance(info.value, StoreError)
    assert info.value.reason == "duplicate_job"
    job = await store.get("dup")
    assert job is not None
    assert job.owner == "alice"


async def test_list_by_owner_and_all_newest_first(store: JobStore, new_job: MakeJob) -> None:
    ids = []
    for owner in ["alice", "bob", "alice", "bob", "alice"]:
        ids.append((await store.create(new_job(owner=owner))).job_id)
    alice = await store.list(owner="alice")
    assert [j.job_id for j in alice] == [ids[4], ids[2], ids[0]]
    everyone = await store.list(owner=None)
    assert [j.job_id for j in everyone] == list(reversed(ids))
    assert await store.list(owner="carol") == []


async def test_created_at_is_strictly_increasing(store: JobStore, new_job: MakeJob) -> None:
    jobs = [await store.create(new_job()) for _ in range(20)]
    stamps = [job.created_at for job in jobs]
    assert all(a < b for a, b in itertools.pairwise(stamps))


async def test_list_limit_and_before_page_through_everything(
    store: JobStore, new_job: MakeJob
) -> None:
    created = [await store.create(new_job()) for _ in range(7)]
    newest_first = [job.job_id for job in reversed(created)]
    pages: list[list[str]] = []
    cursor: datetime | None = None
    while True:
        page = await store.list(owner=None, limit=3, before=cursor)
        if not page:
            break
        pages.append([job.job_id for job in page])
        cursor = page[-1].created_at
    assert [len(page) for page in pages] == [3, 3, 1]
    assert [job_id for page in pages for job_id in page] == newest_first


async def test_list_filters_by_state(store: JobStore, new_job: MakeJob) -> None:
    a = await store.create(new_job(owner="alice"))
    b = await store.create(new_job(owner="alice"))
    c = await store.create(new_job(owner="bob"))
    await store.transition(a.job_id, "processing")
    await store.transition(c.job_id, "processing")
    assert [j.job_id for j in await store.list(owner=None, state="processing")] == [
        c.job_id,
        a.job_id,
    ]
    assert [j.job_id for j in await store.list(owner="alice", state="processing")] == [a.job_id]
    assert [j.job_id for j in await store.list(owner="alice", state="queued")] == [b.job_id]


async def test_list_limit_is_capped(store: JobStore, new_job: MakeJob) -> None:
    for _ in range(MAX_LIST_LIMIT + 5):
        await store.create(new_job())
    assert len(await store.list(owner=None, limit=10_000)) == MAX_LIST_LIMIT


async def test_list_rejects_bad_arguments(store: JobStore) -> None:
    with pytest.raises(ValueError, match="limit"):
        await store.list(owner=None, limit=0)
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.list(owner=None, before=datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="state"):
        await store.list(owner=None, state="archived")  # type: ignore[arg-type]


async def test_delete_removes_job_and_events(store: JobStore, new_job: MakeJob) -> None:
    job = await store.create(new_job())
    await store.transition(job.job_id, "processing")
    assert await store.delete(job.job_id) is True
    assert await store.get(job.job_id) is None
    assert await store.events(job.job_id) == []
    assert await store.delete(job.job_id) is False


async def test_reopen_keeps_jobs_events_results_and_search(
    open_store: OpenStore, new_job: MakeJob
) -> None:
    async with await open_store() as first:
        job = await first.create(new_job())
        await first.transition(job.job_id, "processing")
        text = "persistent platypus"
        await first.store_result(
            job.job_id,
            NewResult(
                text=text,
                metadata={"title": "t"},
                chunks=(ResultChunk(index=0, start=0, end=len(text)),),
                pages=None,
                parser="text",
            ),
        )
        await first.transition(job.job_id, "done")
        await first.mark_processed("msg-1")
    async with await open_store() as second:
        again = await second.get(job.job_id)
        assert again is not None
        assert again.state == "done"
        assert [e.state for e in await second.events(job.job_id)] == [
            "queued",
            "processing",
            "done",
        ]
        result = await second.get_result(job.job_id)
        assert result is not None
        assert result.text == "persistent platypus"
        assert [hit.job_id for hit in await second.search(None, "platypus")] == [job.job_id]
        assert await second.mark_processed("msg-1") is False


async def test_open_sets_wal_foreign_keys_and_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    async with await SqliteJobStore.open(path):
        pass
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert {"jobs", "job_events", "results", "result_chunks", "chunks_fts"} <= tables


async def test_open_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreUnavailable) as info:
        await SqliteJobStore.open(path)
    assert info.value.reason == "schema_too_new"


async def test_mark_processed_is_true_only_the_first_time(store: JobStore) -> None:
    assert await store.mark_processed("jti-1") is True
    assert await store.mark_processed("jti-1") is False
    assert await store.mark_processed("jti-2") is True


async def test_mark_processed_rejects_empty_or_huge_keys(store: JobStore) -> None:
    with pytest.raises(ValueError, match="key"):
        await store.mark_processed("")
    with pytest.raises(ValueError, match="key"):
        await store.mark_processed("k" * 513)


async def test_was_processed_reads_the_ledger_without_writing(store: JobStore) -> None:
    assert await store.was_processed("event-1") is False
    assert await store.was_processed("event-1") is False
    assert await store.mark_processed("event-1") is True
    assert await store.was_processed("event-1") is True
