"""The embedded store's parse requests: which ``processing`` jobs are stuck, and the claim."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Final

from store.parse_requests import (
    STUCK_COLUMNS,
    check_claim,
    check_stuck_query,
    may_claim,
    stuck_from_row,
)
from store.records import StuckJob
from store.sqlite.database import SqliteDatabase
from store.timestamps import to_micros, utcnow

__all__ = ["SqliteParseRequests"]

_REQUESTS: Final = (
    "SELECT jobs.*, COALESCE(p.rerequests, 0) AS rerequests, "
    "COALESCE(p.requested_at, jobs.updated_at) AS requested_at "
    "FROM jobs LEFT JOIN parse_requests AS p USING (job_id)"
)
_STUCK: Final = (
    f"SELECT {STUCK_COLUMNS} FROM ({_REQUESTS} WHERE jobs.state = 'processing') "  # noqa: S608
    "WHERE requested_at < ? ORDER BY requested_at LIMIT ?"
)
_ONE: Final = f"SELECT state, rerequests, requested_at FROM ({_REQUESTS} WHERE jobs.job_id = ?)"  # noqa: S608


class SqliteParseRequests(SqliteDatabase):
    """Stuck jobs and parse-request claims of ``SqliteJobStore`` (see ``store.JobStore``)."""

    __slots__ = ()

    async def stuck_jobs(
        self, *, requested_before: datetime, limit: int = 100
    ) -> builtins.list[StuckJob]:
        """See ``JobStore.stuck_jobs``."""
        cutoff, limit = check_stuck_query(requested_before, limit)
        async with self._read() as db, db.execute(_STUCK, (cutoff, limit)) as cur:
            rows = await cur.fetchall()
        return [stuck_from_row(row) for row in rows]

    async def claim_parse_request(
        self, job_id: str, *, requested_before: datetime, rerequests_below: int | None
    ) -> int | None:
        """See ``JobStore.claim_parse_request``: checked and counted in one write transaction."""
        cutoff = check_claim(requested_before, rerequests_below)
        async with self._write() as db:
            async with db.execute(_ONE, (job_id,)) as cur:
                row = await cur.fetchone()
            if row is None:
                return None
            state, rerequests, last = str(row[0]), int(row[1]), int(row[2])
            if not may_claim(state, rerequests, last, cutoff, rerequests_below):
                return None
            await db.execute(
                "INSERT INTO parse_requests (job_id, rerequests, requested_at) VALUES (?, ?, ?) "
                "ON CONFLICT (job_id) DO UPDATE SET rerequests = excluded.rerequests, "
                "requested_at = excluded.requested_at",
                (job_id, rerequests + 1, max(to_micros(utcnow()), last + 1)),
            )
        return rerequests + 1
