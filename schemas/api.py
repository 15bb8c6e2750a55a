"""The gateway's REST API bodies (``/api/...``): what it answers and, for OpenAPI, documents.

These are HTTP bodies, not broker messages: they carry no ``schema_version`` and are not in
``SCHEMA_MODELS`` (the wire-message registry); ``gateway.openapi`` publishes them instead.
Times are ISO 8601 with a timezone.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.jobs import JobState
from schemas.parsing import Chunk, MetadataValue

__all__ = [
    "ApiModel",
    "ErrorBody",
    "HealthView",
    "JobDetail",
    "JobHistoryEntry",
    "JobLinks",
    "JobList",
    "JobView",
    "ResultView",
    "SearchHitView",
    "SearchHits",
    "StatusView",
    "UploadAccepted",
    "UploadedJob",
]

Count = Annotated[int, Field(ge=0)]


class ApiModel(BaseModel):
    """Base of the API bodies: closed and immutable; docstrings become OpenAPI descriptions."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, use_attribute_docstrings=True, hide_input_in_errors=True
    )


class ErrorBody(ApiModel):
    """Every error answer: a machine-readable code and a human-readable line."""

    error: str
    """A snake_case code such as ``not_found`` or ``insufficient_scope``."""
    detail: str


class HealthView(ApiModel):
    """``GET /api/health``: the gateway process answers."""

    status: Literal["ok"] = "ok"


class StatusView(ApiModel):
    """``GET /api/status``: public callers get ``status`` only; signed-in ones the rest too."""

    status: Literal["ok", "degraded"]
    """``degraded`` when the broker connection is down."""
    broker: bool | None = None
    version: str | None = None
    subject: str | None = None
    scopes: list[str] | None = None


class JobLinks(ApiModel):
    """Where to find more about a job."""

    self: str
    result: str
    events: str


class JobView(ApiModel):
    """A job as its owner (or an admin) sees it."""

    job_id: str
    owner: str
    filename: str
    content_type: str
    size: Count
    """Bytes of the uploaded document."""
    state: JobState
    created_at: AwareDatetime
    updated_at: AwareDatetime
    finished_at: AwareDatetime | None = None
    error_reason: str | None = None
    """Why a ``failed`` job failed, as a snake_case code."""
    error_detail: str | None = None
    links: JobLinks


class JobHistoryEntry(ApiModel):
    """One state change in a job's life."""

    state: JobState
    at: AwareDatetime
    detail: str | None = None


class JobDetail(JobView):
    """``GET /api/jobs/{id}``: the job and its state history, oldest first."""

    history: list[JobHistoryEntry]


class JobList(ApiModel):
    """``GET /api/jobs``: newest first; ``next`` is the cursor of the following page."""

    jobs: list[JobView]
    next: str | None = None


class UploadedJob(ApiModel):
    """One accepted file of an upload."""

    job_id: str
    filename: str
    """The file name as stored (path parts and control characters removed)."""
    state: Literal["queued"] = "queued"
    status_url: str


class UploadAccepted(ApiModel):
    """``POST /api/jobs`` (202): one job per uploaded file, in upload order."""

    jobs: list[UploadedJob]


class ResultView(ApiModel):
    """``GET /api/jobs/{id}/result``: the extracted text, metadata and chunks."""

    job_id: str
    text: str
    metadata: dict[str, MetadataValue]
    pages: Count | None = None
    parser: str
    chunks: list[Chunk]
    """The searchable slices of ``text``, as the parser cut them."""


class SearchHitView(ApiModel):
    """One matching chunk; ``snippet`` marks matches with ``[`` and ``]`` (plain text)."""

    job_id: str
    filename: str
    chunk: Count
    """The chunk's index in the job's result."""
    snippet: str
    score: float
    """Higher is more relevant."""


class SearchHits(ApiModel):
    """``GET /api/search``: best first, over the caller's own documents."""

    hits: list[SearchHitView]
