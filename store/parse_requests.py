"""The sweeper's view of parse requests, shared by both backends: the stuck-job row and checks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from store.bounds import MAX_LIST_LIMIT
from store.job_rows import JOB_COLUMNS, job_from_row
from store.records import StuckJob
from store.timestamps import from_micros, to_micros

__all__ = ["STUCK_COLUMNS", "check_claim", "check_stuck_query", "may_claim", "stuck_from_row"]

STUCK_COLUMNS: Final = JOB_COLUMNS + ", rerequests, requested_at"
"""The columns :func:`stuck_from_row` expects, in its order."""


def stuck_from_row(row: Sequence[Any]) -> StuckJob:
    """The ``StuckJob`` for a row selected as ``STUCK_COLUMNS``."""
    return StuckJob(
        job=job_from_row(row[:-2]),
        rerequests=int(row[-2]),
        requested_at=from_micros(int(row[-1])),
    )


def check_stuck_query(requested_before: datetime, limit: int) -> tuple[int, int]:
    """Validate ``stuck_jobs``' arguments; returns ``(cutoff in microseconds, capped limit)``."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    return to_micros(requested_before), min(limit, MAX_LIST_LIMIT)


def check_claim(requested_before: datetime, rerequests_below: int | None) -> int:
    """Validate ``claim_parse_request``'s arguments; returns the cutoff in microseconds."""
    if rerequests_below is not None and rerequests_below < 0:
        raise ValueError("rerequests_below must not be negative")
    return to_micros(requested_before)


def may_claim(
    state: str, rerequests: int, last: int, cutoff: int, rerequests_below: int | None
) -> bool:
    """Whether a job in ``state`` with these requests may have one more claimed now."""
    if state != "processing" or last >= cutoff:
        return False
    return rerequests_below is None or rerequests < rerequests_below
