"""The embedded store's group commit: concurrent writes share one transaction and one commit,
a failing write rolls back only its own statements, and cancelled writers strand no batch."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from store import DuplicateJob, NewJob, SqliteJobStore


async def _open_counting(path: Path) -> tuple[SqliteJobStore, list[str]]:
    """A store whose writer connection records every COMMIT it executes."""
    store = await SqliteJobStore.open(path)
    commits: list[str] = []
    writer = store._writer  # the test observes the one write connection
    execute = writer.execute

    def counting(sql: str, *args: Any) -> Any:
        if sql.strip().upper() == "COMMIT":
            commits.append(sql)
        return execute(sql, *args)

    writer.execute = counting  # type: ignore[method-assign]
    return store, commits


async def test_concurrent_creates_share_commits_and_are_durable(
    tmp_path: Path, new_job: Callable[..., NewJob]
) -> None:
    """64 concurrent creates commit in a handful of transactions, and every one survives reopening."""
    path = tmp_path / "jobs.sqlite3"
    store, commits = await _open_counting(path)
    jobs = [new_job() for _ in range(64)]
    try:
        await asyncio.wait_for(asyncio.gather(*(store.create(job) for job in jobs)), timeout=30)
        assert 1 <= len(commits) <= 4, len(commits)
    finally:
        await store.close()
    async with await SqliteJobStore.open(path) as reopened:
        assert len(await reopened.list(owner="alice", limit=100)) == 64


async def test_a_failing_write_rolls_back_only_itself(
    tmp_path: Path, new_job: Callable[..., NewJob]
) -> None:
    """A duplicate in the middle of a batch raises DuplicateJob; the writes around it commit."""
    path = tmp_path / "jobs.sqlite3"
    first = new_job()
    async with await SqliteJobStore.open(path) as store:
        await store.create(first)
        others = [new_job() for _ in range(10)]
        outcomes = await asyncio.wait_for(
            asyncio.gather(
                *(store.create(job) for job in others[:5]),
                store.create(first),
                *(store.create(job) for job in others[5:]),
                return_exceptions=True,
            ),
            timeout=30,
        )
        assert isinstance(outcomes[5], DuplicateJob)
        assert not any(isinstance(o, BaseException) for i, o in enumerate(outcomes) if i != 5)
    async with await SqliteJobStore.open(path) as reopened:
        assert len(await reopened.list(owner="alice", limit=100)) == 11


@pytest.mark.parametrize("ticks", range(8))
async def test_cancelled_writers_strand_no_batch(
    tmp_path: Path, new_job: Callable[..., NewJob], ticks: int
) -> None:
    """Writers cancelled at any point leave the others to finish and commit, within seconds."""
    path = tmp_path / "jobs.sqlite3"
    async with await SqliteJobStore.open(path) as store:
        kept = [asyncio.ensure_future(store.create(new_job())) for _ in range(4)]
        doomed = [asyncio.ensure_future(store.create(new_job())) for _ in range(4)]
        for _ in range(ticks):
            await asyncio.sleep(0)
        for task in doomed:
            task.cancel()
        await asyncio.wait_for(asyncio.gather(*kept), timeout=10)
        await asyncio.gather(*doomed, return_exceptions=True)
        survivors = len(await store.list(owner="alice", limit=100))
        assert 4 <= survivors <= 8
        await asyncio.wait_for(store.create(new_job()), timeout=10)
    async with await SqliteJobStore.open(path) as reopened:
        assert len(await reopened.list(owner="alice", limit=100)) == survivors + 1
