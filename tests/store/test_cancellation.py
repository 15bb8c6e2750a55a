"""A request cancelled in the middle of a read or a write (its client went away) leaves the
store usable: no connection stays inside a transaction."""

from __future__ import annotations

import asyncio
import secrets

from store import JobStore, NewJob


def _job() -> NewJob:
    return NewJob(
        job_id=secrets.token_hex(16),
        owner="alice",
        filename="a.txt",
        content_type="text/plain",
        size=1,
        blob_sha256="0" * 64,
        trace=secrets.token_hex(16),
    )


async def _cancel_soon(coroutine: object, ticks: int) -> None:
    task = asyncio.ensure_future(coroutine)  # type: ignore[arg-type]
    for _ in range(ticks):
        await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_cancelled_reads_and_writes_leave_no_transaction_open(store: JobStore) -> None:
    await store.create(_job())
    for ticks in range(12):
        await _cancel_soon(store.list(owner="alice", limit=10), ticks)
        await _cancel_soon(store.create(_job()), ticks)
    jobs = await store.list(owner="alice", limit=100)
    assert jobs
    await store.create(_job())
    assert len(await store.list(owner="alice", limit=100)) == len(jobs) + 1
