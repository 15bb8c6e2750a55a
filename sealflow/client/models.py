"""What the gateway answers (the API contract), as tolerant client views.

These are the client's own models rather than the server's: they ignore fields they do not
know, so a newer gateway that adds fields does not break an older CLI.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "FINAL_STATES",
    "Chunk",
    "HistoryEntry",
    "JobDetail",
    "JobLinks",
    "JobPage",
    "JobResult",
    "JobView",
    "UploadResponse",
    "UploadedJob",
]

FINAL_STATES: Final = frozenset({"done", "failed"})


class _View(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class JobLinks(_View):
    """Where to find more about a job."""

    self: str | None = None
    result: str | None = None
    events: str | None = None


class JobView(_View):
    """A job as ``GET /api/jobs`` lists it."""

    job_id: str = Field(max_length=64)
    owner: str = Field(default="", max_length=256)
    filename: str = Field(default="", max_length=1024)
    content_type: str = Field(default="", max_length=256)
    size: int = 0
    state: str = Field(max_length=32)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    finished_at: datetime | None = None
    error_reason: str | None = Field(default=None, max_length=200)
    error_detail: str | None = Field(default=None, max_length=4000)
    links: JobLinks = Field(default_factory=JobLinks)

    @property
    def final(self) -> bool:
        """True in ``done`` or ``failed``."""
        return self.state in FINAL_STATES


class HistoryEntry(_View):
    """One state change of a job."""

    state: str = Field(max_length=32)
    at: datetime
    detail: str | None = Field(default=None, max_length=4000)


class JobDetail(JobView):
    """``GET /api/jobs/{id}``: the view plus its history."""

    history: list[HistoryEntry] = Field(default_factory=list)


class JobPage(_View):
    """One page of ``GET /api/jobs``."""

    jobs: list[JobView]
    next: str | None = None


class Chunk(_View):
    """A span of the extracted text."""

    index: int
    start: int
    end: int
    page: int | None = None


class JobResult(_View):
    """``GET /api/jobs/{id}/result``: the text the parser extracted."""

    job_id: str
    text: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    pages: int | None = None
    parser: str | None = Field(default=None, max_length=200)
    chunks: list[Chunk] = Field(default_factory=list)


class UploadedJob(_View):
    """One accepted file of ``POST /api/jobs``."""

    job_id: str = Field(max_length=64)
    filename: str = Field(max_length=1024)
    state: str = Field(max_length=32)
    status_url: str | None = None


class UploadResponse(_View):
    """The 202 answer of ``POST /api/jobs``."""

    jobs: list[UploadedJob] = Field(min_length=1)
