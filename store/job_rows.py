"""The job row as both backends store it (times in integer microseconds) and its decoding."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Final, cast

from store.records import Job, JobState, MetadataValue, NewJob, NewResult
from store.timestamps import from_micros

__all__ = ["JOB_COLUMNS", "job_from_row", "metadata_from_json", "metadata_json", "queued_job"]

JOB_COLUMNS: Final = (
    "job_id, owner, filename, content_type, size, blob_sha256, state, "
    "created_at, updated_at, finished_at, error_reason, error_detail, trace"
)
"""The columns :func:`job_from_row` expects, in its order."""


def job_from_row(row: Iterable[Any]) -> Job:
    """The ``Job`` for a row selected as ``JOB_COLUMNS``."""
    (
        job_id,
        owner,
        filename,
        content_type,
        size,
        blob_sha256,
        state,
        created_at,
        updated_at,
        finished_at,
        error_reason,
        error_detail,
        trace,
    ) = row
    return Job(
        job_id=job_id,
        owner=owner,
        filename=filename,
        content_type=content_type,
        size=size,
        blob_sha256=blob_sha256,
        state=cast(JobState, state),
        created_at=from_micros(created_at),
        updated_at=from_micros(updated_at),
        finished_at=None if finished_at is None else from_micros(finished_at),
        error_reason=error_reason,
        error_detail=error_detail,
        trace=trace,
    )


def queued_job(job: NewJob, created: int) -> Job:
    """The ``Job`` just recorded for ``job`` at ``created`` microseconds."""
    at = from_micros(created)
    return Job(
        job_id=job.job_id,
        owner=job.owner,
        filename=job.filename,
        content_type=job.content_type,
        size=job.size,
        blob_sha256=job.blob_sha256,
        state="queued",
        created_at=at,
        updated_at=at,
        finished_at=None,
        error_reason=None,
        error_detail=None,
        trace=job.trace,
    )


def metadata_json(result: NewResult) -> str:
    """A result's metadata as stored: JSON text (validated finite and flat by ``NewResult``)."""
    return json.dumps(dict(result.metadata), ensure_ascii=False, allow_nan=False)


def metadata_from_json(text: str) -> dict[str, MetadataValue]:
    """Stored metadata JSON back to its mapping."""
    return cast(dict[str, MetadataValue], json.loads(text))
