"""The pages: jobs (``/``), one job (``/jobs/{id}``), search, and the admin's audit log and
dead letters. Each is rendered on the server from the same query functions as the API
(``gateway.queries``, ``gateway.admin``); scripts only add live updates and uploads on top.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Final

import structlog
from aiohttp import web

from gateway.admin import audit_listing, dead_letter_listing, replay_letter
from gateway.appkeys import SETTINGS_KEY, STORE_KEY
from gateway.audit_reader import audit_reader
from gateway.auditing import audit_denied
from gateway.auth import PRINCIPAL_KEY
from gateway.content_types import PDF, upload_limit
from gateway.errors import BadRequest, Conflict, GatewayError, NotFound
from gateway.queries import MAX_QUERY_CHARS, delete_finished_job, search_documents, visible_job
from gateway.web.browser import SignedIn, signed_in
from gateway.web.context import web_context
from gateway.web.csrf import CSRF_FIELD, check_csrf
from gateway.web.render import render
from schemas.api_admin import AuditRecordView
from schemas.audit_query import AuditQuery
from schemas.formats import EXTENSIONS, TEXT_TYPES
from store import Job

__all__ = ["SignInNeeded", "add_page_routes"]

_log = structlog.get_logger("sealflow.gateway.web.pages")

MAX_TEXT_CHARS: Final = 200_000
MAX_CHUNKS_SHOWN: Final = 100
MAX_TRAIL: Final = 200
TRAIL_READ_SECONDS: Final = 10.0
SEARCH_HITS_SHOWN: Final = 50


class SignInNeeded(Exception):
    """The page needs a signed-in user: the browser goes through sign-in and comes back."""

    def __init__(self, return_to: str) -> None:
        super().__init__(return_to)
        self.return_to = return_to


async def _denied(request: web.Request, who: SignedIn, why: str) -> web.HTTPForbidden:
    """The 403 page's exception, audited as ``access.denied`` like the API's refusals."""
    await audit_denied(request, who.principal, f"{why} (page)")
    return web.HTTPForbidden(reason=why)


async def _allowed(
    request: web.Request, who: SignedIn, *, scope: str, admin: bool = False
) -> SignedIn:
    """``who`` once it holds ``scope`` (and the admin role when ``admin``); an audited 403."""
    if admin and not who.principal.is_admin:
        raise await _denied(request, who, "admins only")
    if not who.principal.has_scope(scope):
        raise await _denied(request, who, f"missing scope {scope}")
    request[PRINCIPAL_KEY] = who.principal
    return who


async def _page_user(
    request: web.Request, *, scope: str = "jobs:read", admin: bool = False
) -> SignedIn:
    who = await signed_in(request)
    if who is None:
        raise SignInNeeded(request.path_qs)
    return await _allowed(request, who, scope=scope, admin=admin)


async def _form_user(request: web.Request, *, scope: str, admin: bool = False) -> SignedIn:
    """The signed-in user of a posted form, CSRF-checked; an expired session is a 401 page."""
    who = await signed_in(request)
    if who is None:
        raise web.HTTPUnauthorized(reason="session expired")
    form = await request.post()
    sent = form.get(CSRF_FIELD)
    check_csrf(
        request,
        who.session.csrf,
        sent if isinstance(sent, str) else None,
        web_context(request).settings.url,
    )
    return await _allowed(request, who, scope=scope, admin=admin)


# -- jobs -----------------------------------------------------------------------------------


async def index(request: web.Request) -> web.StreamResponse:
    """Signed out: the landing page. Signed in: the jobs table and the upload form."""
    who = await signed_in(request)
    if who is None:
        return render(request, "landing.html", {"title": "Sealflow"}, who=None)
    await _allowed(request, who, scope="jobs:read")
    settings = request.app[SETTINGS_KEY]
    allowed = settings.allowed_content_types
    jobs = await request.app[STORE_KEY].list(
        owner=who.principal.subject, limit=web_context(request).settings.stream_max_jobs
    )
    return render(
        request,
        "jobs.html",
        {
            "title": "Your jobs",
            "jobs": jobs,
            "max_upload_bytes": upload_limit(PDF, settings.max_upload_bytes),
            "max_text_bytes": upload_limit(TEXT_TYPES[0], settings.max_upload_bytes),
            "max_files": settings.max_files_per_upload,
            "accept": ",".join(
                [*allowed, *(ext for ext, media in EXTENSIONS.items() if media in allowed)]
            ),
            "types": settings.allowed_content_types,
        },
        who=who,
    )


async def _visible_job(request: web.Request, who: SignedIn) -> Job:
    return await visible_job(request.app[STORE_KEY], who.principal, request.match_info["job_id"])


@dataclass(frozen=True, slots=True)
class _Trail:
    records: list[AuditRecordView]
    problem: str | None


async def _job_trail(request: web.Request, job_id: str) -> _Trail:
    """The job's audit records, through the audit daemon's query API; its absence is said, not
    raised, so the job page still shows."""
    query = AuditQuery(job=job_id, limit=MAX_TRAIL)
    try:
        async with asyncio.timeout(TRAIL_READ_SECONDS):
            records = await audit_reader(request.app).records(
                query, actor=request[PRINCIPAL_KEY].subject
            )
    except TimeoutError:
        return _Trail([], "the audit log took too long to read")
    except GatewayError as error:
        _log.warning("web.audit_unavailable", detail=error.detail)
        return _Trail([], error.detail)
    return _Trail(records, None)


async def job_page(request: web.Request) -> web.StreamResponse:
    """One job: its states, its text and chunks, metadata, and its audit trail."""
    who = await _page_user(request)
    job = await _visible_job(request, who)
    store = request.app[STORE_KEY]
    history = await store.events(job.job_id)
    result = await store.get_result(job.job_id) if job.state == "done" else None
    chunks: list[dict[str, Any]] = []
    text = ""
    if result is not None:
        text = result.text[:MAX_TEXT_CHARS]
        for chunk in result.chunks[:MAX_CHUNKS_SHOWN]:
            excerpt = result.text[chunk.start : min(chunk.end, chunk.start + 240)]
            chunks.append(
                {
                    "index": chunk.index,
                    "start": chunk.start,
                    "end": chunk.end,
                    "page": chunk.page,
                    "excerpt": " ".join(excerpt.split()),
                }
            )
    trail = await _job_trail(request, job.job_id)
    return render(
        request,
        "job.html",
        {
            "title": job.filename,
            "job": job,
            "history": history,
            "result": result,
            "text": text,
            "text_cut": result is not None and len(result.text) > MAX_TEXT_CHARS,
            "chunks": chunks,
            "chunk_count": len(result.chunks) if result is not None else 0,
            "trail": trail.records,
            "trail_problem": trail.problem,
        },
        who=who,
    )


async def delete_job(request: web.Request) -> web.StreamResponse:
    """The job page's Delete button (a CSRF-checked form)."""
    who = await _form_user(request, scope="jobs:write")
    job = await _visible_job(request, who)
    try:
        await delete_finished_job(request.app, who.principal, job)
    except Conflict as error:
        who.session.flash.append(error.detail)
        raise web.HTTPSeeOther(f"/jobs/{job.job_id}") from error
    who.session.flash.append(f"Deleted {job.filename}.")
    raise web.HTTPSeeOther("/")


# -- search ---------------------------------------------------------------------------------


async def search_page(request: web.Request) -> web.StreamResponse:
    """Full-text search over the user's documents, matches highlighted."""
    who = await _page_user(request)
    q = request.query.get("q", "").strip()
    hits = []
    problem = None
    if q:
        try:
            hits = await search_documents(
                request.app[STORE_KEY], who.principal, q, limit=SEARCH_HITS_SHOWN
            )
        except BadRequest:
            problem = f"Search for at most {MAX_QUERY_CHARS} characters."
    return render(
        request,
        "search.html",
        {"title": "Search", "q": q[:MAX_QUERY_CHARS], "hits": hits, "problem": problem},
        who=who,
        status=400 if problem else 200,
    )


# -- admin ----------------------------------------------------------------------------------


async def audit_page(request: web.Request) -> web.StreamResponse:
    """The audit log with filters; the page's script tails it live."""
    who = await _page_user(request, scope="audit:read", admin=True)
    problem = None
    records: list[Any] = []
    try:
        listing = await audit_listing(request)
        records = list(reversed(listing.records))
    except GatewayError as error:
        problem = error.detail
    query = request.query
    return render(
        request,
        "audit.html",
        {
            "title": "Audit log",
            "records": records,
            "problem": problem,
            "filters": {
                "type": query.get("type", ""),
                "actor": query.get("actor", ""),
                "job": query.get("job", ""),
                "since": query.get("since", ""),
                "limit": query.get("limit", ""),
            },
        },
        who=who,
        status=400 if problem and "must" in problem else 200,
    )


async def dlq_page(request: web.Request) -> web.StreamResponse:
    """Dead letters with their reasons and a Replay button for the replayable ones."""
    who = await _page_user(request, scope="jobs:admin", admin=True)
    problem = None
    letters: list[Any] = []
    truncated = False
    try:
        listing = await dead_letter_listing(request.app)
        letters, truncated = list(listing.messages), bool(listing.truncated)
    except GatewayError as error:
        problem = error.detail
    return render(
        request,
        "dlq.html",
        {"title": "Dead letters", "letters": letters, "truncated": truncated, "problem": problem},
        who=who,
    )


async def replay(request: web.Request) -> web.StreamResponse:
    """The Replay button: re-check, re-seal and republish one dead letter."""
    who = await _form_user(request, scope="jobs:admin", admin=True)
    letter_id = request.match_info["letter_id"]
    try:
        await replay_letter(request.app, who.principal, letter_id)
        who.session.flash.append(f"Dead letter {letter_id[:8]}… was re-sealed and published.")
    except (NotFound, Conflict) as error:
        who.session.flash.append(f"Not replayed: {error.detail}")
    raise web.HTTPSeeOther("/admin/dlq")


def add_page_routes(app: web.Application) -> None:
    app.router.add_get("/", index, name="page:index")
    app.router.add_get("/jobs/{job_id}", job_page, name="page:job")
    app.router.add_post("/jobs/{job_id}/delete", delete_job, name="page:deleteJob")
    app.router.add_get("/search", search_page, name="page:search")
    app.router.add_get("/admin/audit", audit_page, name="page:audit")
    app.router.add_get("/admin/dlq", dlq_page, name="page:dlq")
    app.router.add_post("/admin/dlq/{letter_id}/replay", replay, name="page:replay")
