"""The shared store's parse requests: which ``processing`` jobs are stuck, and the claim."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Final, LiteralString

from store.parse_requests import (
    STUCK_COLUMNS,
    check_claim,
    check_stuck_query,
    may_claim,
    stuck_from_row,
)
from store.postgres.database import PgDatabase
from store.records import StuckJob
from store.timestamps import to_micros, utcnow

__all__ = ["PgParseRequests"]

_STUCK: Final[LiteralString] = (
    "SELECT " + STUCK_COLUMNS + " FROM ("  # noqa: S608 (constant columns)
    "SELECT jobs.*, COALESCE(p.rerequests, 0) AS rerequests, "
    "COALESCE(p.requested_at, jobs.updated_at) AS requested_at "
    "FROM jobs LEFT JOIN parse_requests AS p USING (job_id) WHERE jobs.state = 'processing'"
    ") AS s WHERE requested_at < %s ORDER BY requested_at LIMIT %s"
)


class PgParseRequests(PgDatabase):
    """Stuck jobs and parse-request claims of ``PgJobStore`` (see ``store.JobStore``)."""

    __slots__ = ()

    async def stuck_jobs(
        self, *, requested_before: datetime, limit: int = 100
    ) -> builtins.list[StuckJob]:
        """See ``JobStore.stuck_jobs``."""
        cutoff, limit = check_stuck_query(requested_before, limit)
        async with self._statement() as conn:
            cur = await conn.execute(_STUCK, (cutoff, limit))
            rows = await cur.fetchall()
        return [stuck_from_row(row) for row in rows]

    async def claim_parse_request(
        self, job_id: str, *, requested_before: datetime, rerequests_below: int | None
    ) -> int | None:
        """See ``JobStore.claim_parse_request``: under the job row's lock, so claims queue up."""
        cutoff = check_claim(requested_before, rerequests_below)
        async with self._transaction() as conn:
            cur = await conn.execute(
                "SELECT state, updated_at FROM jobs WHERE job_id = %s FOR UPDATE", (job_id,)
            )
            job = await cur.fetchone()
            if job is None:
                return None
            # A statement of its own, after the lock: it sees a claim committed meanwhile.
            cur = await conn.execute(
                "SELECT rerequests, requested_at FROM parse_requests WHERE job_id = %s", (job_id,)
            )
            row = await cur.fetchone()
            rerequests, last = (0, int(job[1])) if row is None else (int(row[0]), int(row[1]))
            if not may_claim(str(job[0]), rerequests, last, cutoff, rerequests_below):
                return None
            await conn.execute(
                "INSERT INTO parse_requests (job_id, rerequests, requested_at) "
                "VALUES (%s, %s, %s) ON CONFLICT (job_id) DO UPDATE SET "
                "rerequests = EXCLUDED.rerequests, requested_at = EXCLUDED.requested_at",
                (job_id, rerequests + 1, max(to_micros(utcnow()), last + 1)),
            )
        return rerequests + 1
