"""The jobs API's handlers: health, status, upload, list, get, result, delete, search.

Each reads its parameters from the request, asks ``gateway.queries`` (or, for an upload,
``gateway.uploads`` and ``gateway.submission``) and answers JSON; ``gateway.catalogue``
declares their routes. A job is visible to its owner and to admins; to anyone else it does
not exist (``404``).
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from importlib import metadata
from typing import Final

import structlog
from aiohttp import web
from pydantic import BaseModel

from broker import BrokerError
from gateway.appkeys import (
    AUDIT_KEY,
    BLOB_KEEPER_KEY,
    PUBLISHER_KEY,
    QUOTA_KEY,
    RUNTIME_KEY,
    SETTINGS_KEY,
    STORE_KEY,
)
from gateway.auditing import audit, audit_denied
from gateway.auth import PRINCIPAL_KEY, Principal
from gateway.errors import BadRequest, Forbidden, GatewayError, NotReady, Unavailable
from gateway.queries import delete_finished_job, search_documents, visible_job
from gateway.submission import Document, submit_document
from gateway.uploads import receive_files
from gateway.views import job_detail, job_path, job_view, result_view, search_hit_view
from schemas import (
    HealthView,
    JobList,
    SearchHits,
    StatusView,
    UploadAccepted,
    UploadedJob,
)
from store import JOB_STATES, Job

__all__ = [
    "MAX_LIST_LIMIT",
    "MAX_SEARCH_LIMIT",
    "delete_job",
    "get_job",
    "get_result",
    "health",
    "list_jobs",
    "search",
    "status",
    "upload",
]

_log = structlog.get_logger("sealflow.gateway.jobs")

_CURSOR: Final = re.compile(r"^[0-9]{1,19}$")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
MAX_LIST_LIMIT: Final = 200
MAX_SEARCH_LIMIT: Final = 100


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
    return await visible_job(
        request.app[STORE_KEY], _principal(request), request.match_info["job_id"]
    )


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


async def _refused(app: web.Application, principal: Principal, reason: str, detail: str) -> None:
    await audit(
        app,
        type="upload.rejected",
        action="submit",
        outcome="failure",
        actor=principal.subject,
        reason=reason,
        detail=detail,
    )


async def _discard(app: web.Application, files: list[Document]) -> None:
    keeper = app[BLOB_KEEPER_KEY]
    for file in files:
        await keeper.discard(file.blob_sha256)


async def _submit_all(
    app: web.Application, principal: Principal, files: list[Document]
) -> list[UploadedJob]:
    """Within the user's quota, one job per file in order; on a refusal or a failed publish
    the files not yet submitted are discarded."""
    quota, store, keeper = app[QUOTA_KEY], app[STORE_KEY], app[BLOB_KEEPER_KEY]
    accepted: list[UploadedJob] = []
    try:
        async with quota.lock(principal.subject):
            await quota.check(store, principal.subject, adding=len(files))
            for file in files:
                submitted = await submit_document(
                    store,
                    app[PUBLISHER_KEY],
                    app[AUDIT_KEY],
                    owner=principal.subject,
                    document=file,
                    blobs=keeper.blobs,
                    via="the gateway",
                )
                keeper.release(file.blob_sha256)
                accepted.append(
                    UploadedJob(
                        job_id=submitted.job_id,
                        filename=file.filename,
                        status_url=job_path(submitted.job_id),
                    )
                )
    except GatewayError as error:
        await _discard(app, files[len(accepted) :])
        await _refused(app, principal, error.reason, error.detail)
        raise
    except BrokerError as error:
        await _discard(app, files[len(accepted) :])
        _log.error("upload.publish_failed", error=str(error), accepted=len(accepted))
        queued = (
            f"; {len(accepted)} earlier file(s) were queued: "
            + ", ".join(job.job_id for job in accepted)
            if accepted
            else "; nothing was queued"
        )
        await _refused(app, principal, "broker_unavailable", str(error))
        raise Unavailable(f"the broker is unavailable, try again later{queued}") from error
    except BaseException:
        await _discard(app, files[len(accepted) :])
        raise
    return accepted


async def upload(request: web.Request) -> web.Response:
    """Store every file, then record and publish one job per file (see ``gateway.uploads``
    and ``gateway.submission``), within the user's quota of jobs in flight.

    The quota is checked before the body is read (a user at the limit sends nothing in vain)
    and again, under the user's lock, for the files received. Recording and publishing run
    shielded: a client that disconnects then cannot leave a job recorded but never published
    (it finishes, and the client can find it in its list).
    """
    app, principal = request.app, _principal(request)
    try:
        await app[QUOTA_KEY].check(app[STORE_KEY], principal.subject, adding=1)
        files = await receive_files(request, app[SETTINGS_KEY], app[BLOB_KEEPER_KEY])
    except GatewayError as error:
        await _refused(app, principal, error.reason, error.detail)
        raise
    accepted = await asyncio.shield(asyncio.ensure_future(_submit_all(app, principal, files)))
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
    await delete_finished_job(request.app, _principal(request), job)
    return web.Response(status=204)


async def search(request: web.Request) -> web.Response:
    """Full-text search over the caller's own documents, best first."""
    limit = _int_param(request, "limit", 20, 1, MAX_SEARCH_LIMIT)
    hits = await search_documents(
        request.app[STORE_KEY], _principal(request), request.query.get("q", ""), limit=limit
    )
    return _json(SearchHits(hits=[search_hit_view(hit) for hit in hits]))
