"""The jobs API: health, status, upload, list, get, result, live events, delete, search.

Every route is declared once in :data:`OPERATIONS`; ``gateway.app`` registers them behind
their authentication. A job is visible to its owner and to admins; to anyone else it does
not exist (``404``), so job ids cannot be probed.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from datetime import UTC, datetime, timedelta
from importlib import metadata
from typing import Final

import structlog
from aiohttp import web
from aiohttp_sse import sse_response
from pydantic import BaseModel

from broker import BrokerError
from broker.tracing import current_trace_id
from gateway.appkeys import (
    BLOB_KEEPER_KEY,
    HUB_KEY,
    PUBLISHER_KEY,
    RUNTIME_KEY,
    SETTINGS_KEY,
    STORE_KEY,
)
from gateway.auditing import audit, audit_denied
from gateway.auth import PRINCIPAL_KEY, Principal
from gateway.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    GatewayError,
    NotFound,
    NotReady,
    Unavailable,
)
from gateway.operations import Operation, Parameter
from gateway.uploads import ReceivedFile, receive_files
from gateway.views import job_detail, job_path, job_view, result_view, search_hit_view
from schemas import (
    ErrorBody,
    HealthView,
    JobDetail,
    JobList,
    JobSubmitted,
    JobView,
    ResultView,
    SearchHits,
    StatusView,
    UploadAccepted,
    UploadedJob,
)
from store import JOB_STATES, Job, NewJob

__all__ = ["OPERATIONS"]

_log = structlog.get_logger("sealflow.gateway.jobs")

_JOB_ID: Final = re.compile(r"^[0-9a-f]{32}$")
_CURSOR: Final = re.compile(r"^[0-9]{1,19}$")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_FINAL: Final = frozenset({"done", "failed"})
MAX_LIST_LIMIT: Final = 200
MAX_SEARCH_LIMIT: Final = 100
MAX_QUERY_CHARS: Final = 1000


def _version() -> str:
    try:
        return metadata.version("sealflow")
    except metadata.PackageNotFoundError:
        return "unknown"


VERSION: Final = _version()


def _json(
    model: BaseModel, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        text=model.model_dump_json(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def _principal(request: web.Request) -> Principal:
    return request[PRINCIPAL_KEY]


def _int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or len(raw) > 6 or not low <= int(raw) <= high:
        raise BadRequest(f"{name} must be an integer from {low} to {high}")
    return int(raw)


async def _visible_job(request: web.Request) -> Job:
    """The job in the path if the caller may see it; ``404`` otherwise (also when malformed)."""
    job_id = request.match_info["job_id"]
    principal = _principal(request)
    if _JOB_ID.match(job_id) is None:
        raise NotFound("no such job")
    job = await request.app[STORE_KEY].get(job_id)
    if job is None or (job.owner != principal.subject and not principal.is_admin):
        raise NotFound("no such job")
    return job


# -- health and status ----------------------------------------------------------------------


async def health(request: web.Request) -> web.Response:
    """The process answers (no dependency is checked)."""
    return _json(HealthView())


async def status(request: web.Request) -> web.Response:
    """Public: ok or degraded; signed in: also the broker, version, subject and scopes."""
    runtime = request.app[RUNTIME_KEY]
    connection = runtime.connection
    broker_up = connection is not None and not connection.is_closed
    view = StatusView(status="ok" if broker_up else "degraded")
    principal = request.get(PRINCIPAL_KEY)
    if principal is not None:
        view = StatusView(
            status=view.status,
            broker=broker_up,
            version=VERSION,
            subject=principal.subject,
            scopes=list(principal.scopes),
        )
    return web.Response(
        text=view.model_dump_json(exclude_none=True), content_type="application/json"
    )


# -- upload ---------------------------------------------------------------------------------


async def _discard_all(request: web.Request, files: list[ReceivedFile]) -> None:
    keeper = request.app[BLOB_KEEPER_KEY]
    for file in files:
        await keeper.discard(file.blob_sha256)


async def _submit(request: web.Request, file: ReceivedFile) -> UploadedJob:
    """Record one job and publish ``job.submitted``; on a failed publish the record goes."""
    app, principal = request.app, _principal(request)
    store, publisher = app[STORE_KEY], app[PUBLISHER_KEY]
    # The request's trace (a caller's traceparent or the request span's), else a fresh one.
    job_id, trace = secrets.token_hex(16), current_trace_id() or secrets.token_hex(16)
    message = JobSubmitted(
        job_id=job_id,
        owner=principal.subject,
        filename=file.filename,
        content_type=file.content_type,
        size=file.size,
        blob_sha256=file.blob_sha256,
        submitted_at=datetime.now(UTC),
    )
    await store.create(
        NewJob(
            job_id=job_id,
            owner=principal.subject,
            filename=file.filename,
            content_type=file.content_type,
            size=file.size,
            blob_sha256=file.blob_sha256,
            trace=trace,
        )
    )
    try:
        sealed = await publisher.send(
            message,
            typ="job.submitted",
            aud="worker",
            sub=principal.subject,
            job=job_id,
            act={"sub": "gateway"},
            trace=trace,
        )
    except BaseException:
        await store.delete(job_id)
        raise
    app[BLOB_KEEPER_KEY].release(file.blob_sha256)
    await audit(
        app,
        type="job.submitted",
        action="submit",
        outcome="success",
        actor=principal.subject,
        job=job_id,
        trace=trace,
        jti=sealed.jti,
        detail=f"{file.filename} ({file.content_type}, {file.size} bytes) via the gateway",
    )
    return UploadedJob(job_id=job_id, filename=file.filename, status_url=job_path(job_id))


async def _submit_all(request: web.Request, files: list[ReceivedFile]) -> list[UploadedJob]:
    """One job per file, in order; a failed publish discards this and the remaining files."""
    app, principal = request.app, _principal(request)
    accepted: list[UploadedJob] = []
    for index, file in enumerate(files):
        try:
            accepted.append(await _submit(request, file))
        except BrokerError as error:
            await _discard_all(request, files[index:])
            _log.error("upload.publish_failed", error=str(error), accepted=len(accepted))
            await audit(
                app,
                type="upload.rejected",
                action="submit",
                outcome="failure",
                actor=principal.subject,
                reason="broker_unavailable",
                detail=str(error),
            )
            queued = (
                f"; {len(accepted)} earlier file(s) were queued: "
                + ", ".join(job.job_id for job in accepted)
                if accepted
                else "; nothing was queued"
            )
            raise Unavailable(f"the broker is unavailable, try again later{queued}") from error
        except BaseException:
            await _discard_all(request, files[index:])
            raise
    return accepted


async def upload(request: web.Request) -> web.Response:
    """Store every file, then record and publish one job per file (see ``gateway.uploads``).

    Recording and publishing run shielded: a client that disconnects then cannot leave a job
    recorded but never published (it finishes, and the client can find it in its list).
    """
    app, principal = request.app, _principal(request)
    try:
        files = await receive_files(request, app[SETTINGS_KEY], app[BLOB_KEEPER_KEY])
    except GatewayError as error:
        await audit(
            app,
            type="upload.rejected",
            action="submit",
            outcome="failure",
            actor=principal.subject,
            reason=error.reason,
            detail=error.detail,
        )
        raise
    accepted = await asyncio.shield(asyncio.ensure_future(_submit_all(request, files)))
    body = UploadAccepted(jobs=accepted)
    return _json(body, status=202, headers={"Location": accepted[0].status_url})


# -- reading jobs ---------------------------------------------------------------------------


def _cursor(job: Job) -> str:
    return str((job.created_at - _EPOCH) // timedelta(microseconds=1))


def _before(raw: str | None) -> datetime | None:
    if raw is None:
        return None
    if _CURSOR.match(raw) is None:
        raise BadRequest("cursor is malformed")
    try:
        return _EPOCH + timedelta(microseconds=int(raw))
    except OverflowError as error:
        raise BadRequest("cursor is malformed") from error


async def list_jobs(request: web.Request) -> web.Response:
    """The caller's jobs newest first; an admin may ask for everyone's or one owner's."""
    principal = _principal(request)
    query = request.query
    owner: str | None = principal.subject
    everyone = query.get("all", "false").lower()
    if everyone not in {"true", "false", "1", "0"}:
        raise BadRequest("all must be true or false")
    wanted_owner = query.get("owner")
    if everyone in {"true", "1"} or (wanted_owner is not None and wanted_owner != owner):
        if not principal.is_admin:
            why = "only an admin may list other users' jobs"
            await audit_denied(request, principal, why)
            raise Forbidden(why)
        owner = wanted_owner if wanted_owner is not None else None
    if owner is not None and not 0 < len(owner) <= 255:
        raise BadRequest("owner must be 1 to 255 characters")
    state = query.get("state")
    if state is not None and state not in JOB_STATES:
        raise BadRequest(f"state must be one of {', '.join(JOB_STATES)}")
    limit = _int_param(request, "limit", 50, 1, MAX_LIST_LIMIT)
    jobs = await request.app[STORE_KEY].list(
        owner=owner,
        state=state,
        limit=limit,
        before=_before(query.get("cursor")),
    )
    cursor = _cursor(jobs[-1]) if len(jobs) == limit else None
    return _json(JobList(jobs=[job_view(job) for job in jobs], next=cursor))


async def get_job(request: web.Request) -> web.Response:
    """One job with its state history."""
    job = await _visible_job(request)
    history = await request.app[STORE_KEY].events(job.job_id)
    return _json(job_detail(job, history))


async def get_result(request: web.Request) -> web.Response:
    """The job's extracted text, metadata and chunks; ``409 not_ready`` until it is done."""
    job = await _visible_job(request)
    result = await request.app[STORE_KEY].get_result(job.job_id)
    if result is None:
        if job.state == "failed":
            raise NotReady(f"the job failed ({job.error_reason}); it has no result")
        raise NotReady(f"the job is {job.state}; its result is not ready yet")
    return _json(result_view(result))


async def delete_job(request: web.Request) -> web.Response:
    """Remove a finished job, its result and (if no other job shares it) its blob."""
    job = await _visible_job(request)
    if job.state not in _FINAL:
        raise Conflict(f"the job is {job.state}; delete it once it is done or failed")
    principal = _principal(request)
    app = request.app
    if await app[STORE_KEY].delete(job.job_id):
        keeper = app[BLOB_KEEPER_KEY]
        keeper.hold(job.blob_sha256)
        await keeper.discard(job.blob_sha256)
        await audit(
            app,
            type="job.deleted",
            action="delete",
            outcome="success",
            actor=principal.subject,
            subject=job.owner,
            job=job.job_id,
            trace=job.trace,
        )
    return web.Response(status=204)


async def search(request: web.Request) -> web.Response:
    """Full-text search over the caller's own documents, best first."""
    q = request.query.get("q", "")
    if not q.strip() or len(q) > MAX_QUERY_CHARS:
        raise BadRequest(f"q must be 1 to {MAX_QUERY_CHARS} characters")
    limit = _int_param(request, "limit", 20, 1, MAX_SEARCH_LIMIT)
    hits = await request.app[STORE_KEY].search(_principal(request).subject, q, limit=limit)
    return _json(SearchHits(hits=[search_hit_view(hit) for hit in hits]))


# -- live events ----------------------------------------------------------------------------


async def job_events(request: web.Request) -> web.StreamResponse:
    """``text/event-stream`` of ``state`` events (JobView JSON) until a final state.

    The current state is sent at once, then every change. Bounded: it closes after a final
    state, after ``sse_max_seconds``, or when the caller is revoked; comments every
    ``sse_heartbeat_seconds`` keep proxies from timing it out. Each open stream counts against
    the hub's caps (in all and per user).
    """
    job = await _visible_job(request)
    app = request.app
    settings, store = app[SETTINGS_KEY], app[STORE_KEY]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.sse_max_seconds
    # Follow the job before the first read, so a change between the two is not missed.
    with app[HUB_KEY].stream(_principal(request)) as live:
        app[HUB_KEY].follow(live, job.job_id)
        async with sse_response(request, ping_interval=settings.sse_heartbeat_seconds) as stream:
            sent: tuple[str, datetime] | None = None
            current: Job | None = job
            while current is not None and stream.is_connected():
                seen = (current.state, current.updated_at)
                if seen != sent:
                    await stream.send(job_view(current).model_dump_json(), event="state")
                    sent = seen
                remaining = deadline - loop.time()
                if current.state in _FINAL or remaining <= 0:
                    break
                await live.wait(min(settings.sse_poll_seconds, remaining))
                if live.closed_because is not None:
                    break
                current = await store.get(job.job_id)
            if current is None:
                await stream.send(json.dumps({"job_id": job.job_id}), event="deleted")
    return stream


# -- the catalogue --------------------------------------------------------------------------

_JOB_ID_PARAM: Final = Parameter(
    "job_id",
    "path",
    "The job's id (32 hex digits).",
    required=True,
    schema={"type": "string", "pattern": "^[0-9a-f]{32}$"},
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
        responses={
            202: UploadAccepted,
            400: ErrorBody,
            **_ERRORS,
            408: ErrorBody,
            413: ErrorBody,
            415: ErrorBody,
            503: ErrorBody,
        },
        description=(
            "multipart/form-data with one or more parts named `file`. Each file is checked "
            "(size, type against its bytes) and stored before any job is recorded: if one is "
            "refused, none becomes a job. One job per file, answered in upload order."
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
