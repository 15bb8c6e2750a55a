"""The shared store's jobs and their state history (PostgreSQL); a job's blob commits with it."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Final, LiteralString, cast

from store.bounds import check_list, check_transition
from store.digests import check_blob, check_sha256
from store.errors import DuplicateJob, InvalidTransition, JobNotFound
from store.job_rows import JOB_COLUMNS, job_from_row, queued_job
from store.postgres.blobs import delete_unused_blob, insert_blob, lock_blob, read_blob
from store.postgres.database import Connection, PgDatabase
from store.postgres.locks import JOB_CREATE_LOCK
from store.records import Job, JobEvent, JobState, NewJob
from store.timestamps import from_micros, to_micros, utcnow
from store.transitions import ALLOWED_FROM, TERMINAL_STATES

__all__ = ["PgJobs"]

_CREATE_LOCK: Final = JOB_CREATE_LOCK
"""Advisory lock held while a job is created, so ``created_at`` is strictly increasing."""

_SELECT_JOB: Final[LiteralString] = "SELECT " + JOB_COLUMNS + " FROM jobs "  # noqa: S608 (constant)
_NEWEST_FIRST: Final = "created_at < %s ORDER BY created_at DESC LIMIT %s"
_LIST_JOBS: Final[dict[tuple[bool, bool], LiteralString]] = {
    (False, False): _SELECT_JOB + "WHERE " + _NEWEST_FIRST,
    (True, False): _SELECT_JOB + "WHERE owner = %s AND " + _NEWEST_FIRST,
    (False, True): _SELECT_JOB + "WHERE state = %s AND " + _NEWEST_FIRST,
    (True, True): _SELECT_JOB + "WHERE owner = %s AND state = %s AND " + _NEWEST_FIRST,
}


# Run under the creation lock: the statement's snapshot then sees every job committed before
# it, so MAX(created_at) + 1 is strictly increasing and a taken id is a conflict, not a race.
_INSERT_JOB: Final = (
    "WITH job AS ("
    " INSERT INTO jobs (job_id, owner, filename, content_type, size, blob_sha256, state,"
    " created_at, updated_at, trace)"
    " SELECT %(job_id)s, %(owner)s, %(filename)s, %(content_type)s, %(size)s, %(blob)s,"
    " 'queued', t.at, t.at, %(trace)s"
    " FROM (SELECT GREATEST(%(now)s, COALESCE(MAX(created_at) + 1, 0)) AS at FROM jobs) AS t"
    " ON CONFLICT (job_id) DO NOTHING RETURNING job_id, created_at) "
    "INSERT INTO job_events (job_id, state, at, detail) "
    "SELECT job_id, 'queued', created_at, NULL FROM job RETURNING at"
)


async def _insert_job(conn: Connection, job: NewJob) -> Job:
    """Insert the job row and its ``queued`` event inside the caller's transaction."""
    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_CREATE_LOCK,))
    cur = await conn.execute(
        _INSERT_JOB,
        {
            "job_id": job.job_id,
            "owner": job.owner,
            "filename": job.filename,
            "content_type": job.content_type,
            "size": job.size,
            "blob": job.blob_sha256,
            "trace": job.trace,
            "now": to_micros(utcnow()),
        },
    )
    row = await cur.fetchone()
    if row is None:
        raise DuplicateJob(f"job {job.job_id} already exists")
    return queued_job(job, int(row[0]))


class PgJobs(PgDatabase):
    """Jobs, transitions, events and job blobs of ``PgJobStore`` (see ``store.JobStore``)."""

    __slots__ = ()

    async def create(self, job: NewJob) -> Job:
        """See ``JobStore.create``."""
        async with self._transaction() as conn:
            return await _insert_job(conn, job)

    async def create_with_blob(self, job: NewJob, data: bytes) -> Job:
        """See ``JobStore.create_with_blob``: the blob's rows and the job's, one transaction."""
        check_blob(data, job.blob_sha256, job.size)
        async with self._transaction() as conn:
            await lock_blob(conn, job.blob_sha256)
            await insert_blob(conn, job.blob_sha256, data)
            return await _insert_job(conn, job)

    async def read_blob(self, sha256: str, *, max_bytes: int) -> bytes:
        """See ``JobStore.read_blob``."""
        check_sha256(sha256)
        async with self._snapshot() as conn:
            return await read_blob(conn, sha256, max_bytes=max_bytes)

    async def get(self, job_id: str) -> Job | None:
        """See ``JobStore.get``."""
        async with self._statement() as conn:
            cur = await conn.execute(_SELECT_JOB + "WHERE job_id = %s", (job_id,))
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
        async with self._statement() as conn:
            cur = await conn.execute(_LIST_JOBS[(owner is not None, state is not None)], params)
            rows = await cur.fetchall()
        return [job_from_row(row) for row in rows]

    async def delete(self, job_id: str) -> bool:
        """See ``JobStore.delete``; a blob no other job names goes in the same transaction."""
        async with self._transaction() as conn:
            cur = await conn.execute("SELECT blob_sha256 FROM jobs WHERE job_id = %s", (job_id,))
            row = await cur.fetchone()
            if row is None:
                return False
            await lock_blob(conn, row[0])
            # events, the result and its chunks go by ON DELETE CASCADE.
            cur = await conn.execute("DELETE FROM jobs WHERE job_id = %s", (job_id,))
            await delete_unused_blob(conn, row[0])
            return cur.rowcount == 1

    async def blob_in_use(self, blob_sha256: str) -> bool:
        """See ``JobStore.blob_in_use``."""
        async with self._statement() as conn:
            cur = await conn.execute(
                "SELECT 1 FROM jobs WHERE blob_sha256 = %s LIMIT 1", (blob_sha256,)
            )
            return await cur.fetchone() is not None

    async def transition(
        self,
        job_id: str,
        to: JobState,
        *,
        detail: str | None = None,
        error_reason: str | None = None,
    ) -> bool:
        """See ``JobStore.transition``: the guarded UPDATE lets one of concurrent ones win."""
        detail = check_transition(to, detail, error_reason)
        allowed = ALLOWED_FROM[to]
        now = to_micros(utcnow())
        terminal = to in TERMINAL_STATES
        async with self._transaction() as conn:
            if allowed:
                cur = await conn.execute(
                    "UPDATE jobs SET state = %s, updated_at = GREATEST(%s, created_at), "
                    "finished_at = CASE WHEN %s THEN GREATEST(%s, created_at) END, "
                    "error_reason = %s, error_detail = %s "
                    "WHERE job_id = %s AND state = ANY(%s) RETURNING updated_at",
                    (
                        to,
                        now,
                        terminal,
                        now,
                        error_reason,
                        detail if to == "failed" else None,
                        job_id,
                        list(allowed),
                    ),
                )
                moved = await cur.fetchone()
                if moved is not None:
                    await conn.execute(
                        "INSERT INTO job_events (job_id, state, at, detail) "
                        "VALUES (%s, %s, %s, %s)",
                        (job_id, to, moved[0], detail),
                    )
                    return True
            cur = await conn.execute("SELECT state FROM jobs WHERE job_id = %s", (job_id,))
            row = await cur.fetchone()
        if row is None:
            raise JobNotFound(f"no job {job_id}")
        if row[0] == to:
            return False
        raise InvalidTransition(f"job {job_id} is {row[0]} and cannot become {to}")

    async def events(self, job_id: str) -> builtins.list[JobEvent]:
        """See ``JobStore.events``."""
        async with self._statement() as conn:
            cur = await conn.execute(
                "SELECT state, at, detail FROM job_events WHERE job_id = %s ORDER BY id",
                (job_id,),
            )
            rows = await cur.fetchall()
        return [
            JobEvent(job_id=job_id, state=cast(JobState, state), at=from_micros(at), detail=detail)
            for state, at, detail in rows
        ]
