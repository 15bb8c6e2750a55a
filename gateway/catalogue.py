"""The jobs API's route catalogue: health, status, upload, list, get, result, live events,
delete and search, each declared once as an ``Operation``.

``gateway.app`` registers them behind their authentication, ``gateway.openapi`` documents
them and ``gateway.web.api`` bridges some to the browser session, all from this one table.
"""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel

from gateway.handlers import (
    MAX_LIST_LIMIT,
    MAX_SEARCH_LIMIT,
    delete_job,
    get_job,
    get_result,
    health,
    list_jobs,
    search,
    status,
    upload,
)
from gateway.operations import Operation, Parameter
from gateway.queries import JOB_ID
from gateway.streams import job_events
from schemas import (
    ErrorBody,
    HealthView,
    JobDetail,
    JobList,
    JobView,
    ResultView,
    SearchHits,
    StatusView,
    UploadAccepted,
)
from store import JOB_STATES

__all__ = ["OPERATIONS"]

_JOB_ID_PARAM: Final = Parameter(
    "job_id",
    "path",
    "The job's id (32 hex digits).",
    required=True,
    schema={"type": "string", "pattern": JOB_ID.pattern},
)
_ERRORS: Final[dict[int, type[BaseModel] | None]] = {401: ErrorBody, 403: ErrorBody}

OPERATIONS: Final[tuple[Operation, ...]] = (
    Operation(
        "GET",
        "/api/health",
        health,
        "getHealth",
        "Is the gateway up",
        "status",
        auth="none",
        responses={200: HealthView},
    ),
    Operation(
        "GET",
        "/api/status",
        status,
        "getStatus",
        "Gateway status (more detail when signed in)",
        "status",
        auth="optional",
        responses={200: StatusView, 401: ErrorBody},
    ),
    Operation(
        "POST",
        "/api/jobs",
        upload,
        "uploadJobs",
        "Upload one or more documents",
        "jobs",
        scopes=("jobs:write",),
        request="multipart",
        own_timeout=True,
        responses={
            202: UploadAccepted,
            400: ErrorBody,
            **_ERRORS,
            408: ErrorBody,
            413: ErrorBody,
            415: ErrorBody,
            429: ErrorBody,
            503: ErrorBody,
        },
        description=(
            "multipart/form-data with one or more parts named `file`. Each file is checked "
            "(size, type against its bytes) and stored before any job is recorded: if one is "
            "refused, none becomes a job. One job per file, answered in upload order. A user "
            "has at most `max_jobs_in_flight_per_user` jobs queued or processing: an upload "
            "past it is 429 `quota_exceeded` with `Retry-After`."
        ),
    ),
    Operation(
        "GET",
        "/api/jobs",
        list_jobs,
        "listJobs",
        "List jobs, newest first",
        "jobs",
        scopes=("jobs:read",),
        parameters=(
            Parameter(
                "state", "query", "Only jobs in this state.", schema={"enum": list(JOB_STATES)}
            ),
            Parameter(
                "limit",
                "query",
                "Page size.",
                schema={"type": "integer", "minimum": 1, "maximum": MAX_LIST_LIMIT},
            ),
            Parameter("cursor", "query", "The `next` of the previous page."),
            Parameter("owner", "query", "Admin only: this user's jobs."),
            Parameter("all", "query", "Admin only: everyone's jobs.", schema={"type": "boolean"}),
        ),
        responses={200: JobList, 400: ErrorBody, **_ERRORS},
    ),
    Operation(
        "GET",
        "/api/jobs/{job_id}",
        get_job,
        "getJob",
        "A job and its history",
        "jobs",
        scopes=("jobs:read",),
        parameters=(_JOB_ID_PARAM,),
        responses={200: JobDetail, **_ERRORS, 404: ErrorBody},
    ),
    Operation(
        "GET",
        "/api/jobs/{job_id}/result",
        get_result,
        "getJobResult",
        "A job's extracted text and chunks",
        "jobs",
        scopes=("jobs:read",),
        parameters=(_JOB_ID_PARAM,),
        responses={200: ResultView, **_ERRORS, 404: ErrorBody, 409: ErrorBody},
    ),
    Operation(
        "GET",
        "/api/jobs/{job_id}/events",
        job_events,
        "streamJobEvents",
        "Live state changes of a job (server-sent events)",
        "jobs",
        scopes=("jobs:read",),
        parameters=(_JOB_ID_PARAM,),
        responses={200: JobView, **_ERRORS, 404: ErrorBody, 429: ErrorBody},
        content_type="text/event-stream",
        own_timeout=True,
        description="Each `state` event carries a JobView; the stream ends after done or failed.",
    ),
    Operation(
        "DELETE",
        "/api/jobs/{job_id}",
        delete_job,
        "deleteJob",
        "Delete a finished job and its result",
        "jobs",
        scopes=("jobs:write",),
        parameters=(_JOB_ID_PARAM,),
        responses={204: None, **_ERRORS, 404: ErrorBody, 409: ErrorBody},
    ),
    Operation(
        "GET",
        "/api/search",
        search,
        "searchDocuments",
        "Full-text search over your documents",
        "search",
        scopes=("jobs:read",),
        parameters=(
            Parameter("q", "query", "Words to find (all of them).", required=True),
            Parameter(
                "limit",
                "query",
                "Most hits.",
                schema={"type": "integer", "minimum": 1, "maximum": MAX_SEARCH_LIMIT},
            ),
        ),
        responses={200: SearchHits, 400: ErrorBody, **_ERRORS},
    ),
)
"""Every jobs/search/status route; ``gateway.app.create_app`` registers them."""
