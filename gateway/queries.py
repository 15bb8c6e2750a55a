"""What the jobs API and the pages both ask for: the job a caller may see, a search, a deletion.

HTTP-free (each takes the application's parts and the caller, never a request), so an API
handler and a page call the same function and only answer differently: JSON or HTML.
"""

from __future__ import annotations

import re
from typing import Final

from aiohttp import web

from gateway.appkeys import BLOB_KEEPER_KEY, STORE_KEY
from gateway.auditing import audit
from gateway.auth import Principal
from gateway.errors import BadRequest, Conflict, NotFound
from store import Job, JobStore, SearchHit

__all__ = [
    "FINAL_STATES",
    "JOB_ID",
    "MAX_QUERY_CHARS",
    "delete_finished_job",
    "search_documents",
    "visible_job",
]

JOB_ID: Final = re.compile(r"^[0-9a-f]{32}$")
FINAL_STATES: Final = frozenset({"done", "failed"})
MAX_QUERY_CHARS: Final = 1000


async def visible_job(store: JobStore, principal: Principal, job_id: str) -> Job:
    """The job if ``principal`` may see it (its owner, or an admin); ``NotFound`` otherwise,
    also for a malformed id, so job ids cannot be probed."""
    if JOB_ID.match(job_id) is None:
        raise NotFound("no such job")
    job = await store.get(job_id)
    if job is None or (job.owner != principal.subject and not principal.is_admin):
        raise NotFound("no such job")
    return job


async def search_documents(
    store: JobStore, principal: Principal, q: str, *, limit: int
) -> list[SearchHit]:
    """Full-text search over the caller's own documents, best first; ``BadRequest`` for a
    query that is empty or longer than ``MAX_QUERY_CHARS``."""
    if not q.strip() or len(q) > MAX_QUERY_CHARS:
        raise BadRequest(f"q must be 1 to {MAX_QUERY_CHARS} characters")
    return await store.search(principal.subject, q, limit=limit)


async def delete_finished_job(app: web.Application, principal: Principal, job: Job) -> None:
    """Remove a done or failed job, its result and (if no other job shares it) its blob, and
    audit it; ``Conflict`` while the job is still under way."""
    if job.state not in FINAL_STATES:
        raise Conflict(f"the job is {job.state}; delete it once it is done or failed")
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
