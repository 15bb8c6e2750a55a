"""The embedded store's jobs and their state history (SQLite), and the blob files they name."""

from __future__ import annotations

import asyncio
import builtins
from datetime import datetime
from typing import Final, cast

from store.bounds import check_list, check_transition
from store.digests import check_blob
from store.errors import DuplicateJob, InvalidTransition, JobNotFound
from store.job_rows import JOB_COLUMNS, job_from_row, queued_job
from store.records import Job, JobEvent, JobState, NewJob
from store.sqlite.database import SqliteDatabase
from store.timestamps import from_micros, to_micros, utcnow
from store.transitions import ALLOWED_FROM, TERMINAL_STATES

__all__ = ["SqliteJobs"]

_SELECT_JOB: Final = f"SELECT {JOB_COLUMNS} FROM jobs "  # noqa: S608 (constant columns)
_GET_JOB: Final = _SELECT_JOB + "WHERE job_id = ?"
# Newest first; ``created_at`` is unique per database, so it is an exact paging cursor.
_NEWEST_FIRST: Final = "created_at < ? ORDER BY created_at DESC LIMIT ?"
_LIST_JOBS: Final = {
    (False, False): _SELECT_JOB + "WHERE " + _NEWEST_FIRST,
    (True, False): _SELECT_JOB + "WHERE owner = ? AND " + _NEWEST_FIRST,
    (False, True): _SELECT_JOB + "WHERE state = ? AND " + _NEWEST_FIRST,
    (True, True): _SELECT_JOB + "WHERE owner = ? AND state = ? AND " + _NEWEST_FIRST,
}


class SqliteJobs(SqliteDatabase):
    """Jobs, transitions and events of ``SqliteJobStore`` (see ``store.JobStore``)."""

    __slots__ = ()

    async def create(self, job: NewJob) -> Job:
        """See ``JobStore.create``."""
        now = to_micros(utcnow())
        async with self._write() as db:
            async with db.execute("SELECT 1 FROM jobs WHERE job_id = ?", (job.job_id,)) as cur:
                if await cur.fetchone() is not None:
                    raise DuplicateJob(f"job {job.job_id} already exists")
            async with db.execute("SELECT MAX(created_at) FROM jobs") as cur:
                row = await cur.fetchone()
            latest = row[0] if row is not None else None
            created = now if latest is None else max(now, int(latest) + 1)
            await db.execute(
                "INSERT INTO jobs (job_id, owner, filename, content_type, size, blob_sha256, "
                "state, created_at, updated_at, trace) "
                "VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?)",
                (
                    job.job_id,
                    job.owner,
                    job.filename,
                    job.content_type,
                    job.size,
                    job.blob_sha256,
                    created,
                    created,
                    job.trace,
                ),
            )
            await db.execute(
                "INSERT INTO job_events (job_id, state, at, detail) VALUES (?, 'queued', ?, NULL)",
                (job.job_id, created),
            )
        return queued_job(job, created)

    async def create_with_blob(self, job: NewJob, data: bytes) -> Job:
        """See ``JobStore.create_with_blob``: the file first, then the row.

        Not one transaction here: a crash in between leaves an unnamed blob file, which
        no job names and the gateway's blob keeper may remove; never a job without its blob.
        """
        check_blob(data, job.blob_sha256, job.size)
        await asyncio.to_thread(self.blobs.put, data)
        return await self.create(job)

    async def read_blob(self, sha256: str, *, max_bytes: int) -> bytes:
        """See ``JobStore.read_blob``: from the content-addressed files."""
        return await asyncio.to_thread(self.blobs.read, sha256, max_bytes=max_bytes)

    async def get(self, job_id: str) -> Job | None:
        """See ``JobStore.get``."""
        async with self._read() as db, db.execute(_GET_JOB, (job_id,)) as cur:
            row = await cur.fetchone()
        return None if row is None else job_from_row(row)

    async def list(
        self,
        *,
        owner: str | None,
        state: JobState | None = None,
        limit: int = 50,
        before: datetime | None = None,
    ) -> builtins.list[Job]:
        """See ``JobStore.list``."""
        limit, upper = check_list(state, limit, before)
        filters = [value for value in (owner, state) if value is not None]
        params: tuple[object, ...] = (*filters, upper, limit)
        sql = _LIST_JOBS[(owner is not None, state is not None)]
        async with self._read() as db, db.execute(sql, params) as cur:
            rows = await cur.fetchall()
        return [job_from_row(row) for row in rows]

    async def delete(self, job_id: str) -> bool:
        """See ``JobStore.delete``; the blob file stays (the gateway's blob keeper owns it)."""
        async with self._write() as db:
            await db.execute(
                "DELETE FROM chunks_fts WHERE rowid IN "
                "(SELECT id FROM result_chunks WHERE job_id = ?)",
                (job_id,),
            )
            # events, the result and its chunks go by ON DELETE CASCADE.
            async with db.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,)) as cur:
                return cur.rowcount == 1

    async def blob_in_use(self, blob_sha256: str) -> bool:
        """See ``JobStore.blob_in_use``."""
        async with (
            self._read() as db,
            db.execute("SELECT 1 FROM jobs WHERE blob_sha256 = ? LIMIT 1", (blob_sha256,)) as cur,
        ):
            return await cur.fetchone() is not None

    async def transition(
        self,
        job_id: str,
        to: JobState,
        *,
        detail: str | None = None,
        error_reason: str | None = None,
    ) -> bool:
        """See ``JobStore.transition``."""
        detail = check_transition(to, detail, error_reason)
        allowed = ALLOWED_FROM[to]
        now = to_micros(utcnow())
        finished = now if to in TERMINAL_STATES else None
        async with self._write() as db:
            changed = False
            if allowed:
                first, second = allowed[0], allowed[-1]
                async with db.execute(
                    "UPDATE jobs SET state = ?, updated_at = MAX(?, created_at), "
                    "finished_at = MAX(?, created_at), error_reason = ?, error_detail = ? "
                    "WHERE job_id = ? AND state IN (?, ?)",
                    (
                        to,
                        now,
                        finished,
                        error_reason,
                        detail if to == "failed" else None,
                        job_id,
                        first,
                        second,
                    ),
                ) as cur:
                    changed = cur.rowcount == 1
            if changed:
                await db.execute(
                    "INSERT INTO job_events (job_id, state, at, detail) VALUES "
                    "(?, ?, (SELECT updated_at FROM jobs WHERE job_id = ?), ?)",
                    (job_id, to, job_id, detail),
                )
                return True
            async with db.execute("SELECT state FROM jobs WHERE job_id = ?", (job_id,)) as cur:
                row = await cur.fetchone()
        if row is None:
            raise JobNotFound(f"no job {job_id}")
        if row[0] == to:
            return False
        raise InvalidTransition(f"job {job_id} is {row[0]} and cannot become {to}")

    async def events(self, job_id: str) -> builtins.list[JobEvent]:
        """See ``JobStore.events``."""
        async with (
            self._read() as db,
            db.execute(
                "SELECT state, at, detail FROM job_events WHERE job_id = ? ORDER BY id",
                (job_id,),
            ) as cur,
        ):
            rows = await cur.fetchall()
        return [
            JobEvent(job_id=job_id, state=cast(JobState, state), at=from_micros(at), detail=detail)
            for state, at, detail in rows
        ]
