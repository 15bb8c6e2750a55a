"""Job messages: a submitted upload and the events that report its progress and outcome."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import AwareDatetime, Field

from schemas.base import WireMessage
from schemas.identifiers import (
    ContentType,
    JobId,
    ParserName,
    ReasonCode,
    SafeFilename,
    Sha256Hex,
    Subject,
)
from schemas.limits import MAX_CHUNKS, MAX_TEXT_CHARS, BlobSize, PageCount
from schemas.text import Detail

__all__ = ["JobCompleted", "JobFailed", "JobProgress", "JobState", "JobSubmitted"]

JobState = Literal["queued", "processing", "done", "failed"]
"""Where a job is in its life."""


class JobSubmitted(WireMessage):
    """The gateway accepted an upload and stored its blob; the worker should process it."""

    MESSAGE_TYPE: ClassVar[str] = "job.submitted"

    job_id: JobId
    owner: Subject
    """The user or client that uploaded the document."""
    filename: SafeFilename
    content_type: ContentType
    size: BlobSize
    """Size of the blob in bytes."""
    blob_sha256: Sha256Hex
    """Content address of the stored blob."""
    submitted_at: AwareDatetime


class JobProgress(WireMessage):
    """A job changed state (for live status updates)."""

    MESSAGE_TYPE: ClassVar[str] = "job.progress"

    job_id: JobId
    owner: Subject
    state: JobState
    at: AwareDatetime


class JobCompleted(WireMessage):
    """The worker parsed and stored the job's result."""

    MESSAGE_TYPE: ClassVar[str] = "job.completed"

    job_id: JobId
    owner: Subject
    finished_at: AwareDatetime
    chars: Annotated[int, Field(ge=0, le=MAX_TEXT_CHARS)]
    """Characters of extracted text."""
    chunks: Annotated[int, Field(ge=0, le=MAX_CHUNKS)]
    """Number of chunks stored."""
    pages: PageCount | None = None
    """Pages in the document, where the format has pages."""
    parser: ParserName


class JobFailed(WireMessage):
    """The job failed for good."""

    MESSAGE_TYPE: ClassVar[str] = "job.failed"

    job_id: JobId
    owner: Subject
    reason: ReasonCode
    detail: Detail
    finished_at: AwareDatetime
