"""Store records → API bodies (``schemas.api``)."""

from __future__ import annotations

from collections.abc import Iterable

from schemas import (
    JobDetail,
    JobHistoryEntry,
    JobLinks,
    JobView,
    ResultView,
    SearchHitView,
)
from store import Job, JobEvent, JobResult, SearchHit

__all__ = ["job_detail", "job_path", "job_view", "result_view", "search_hit_view"]


def job_path(job_id: str) -> str:
    """The job's URL path."""
    return f"/api/jobs/{job_id}"


def _links(job_id: str) -> JobLinks:
    path = job_path(job_id)
    return JobLinks(self=path, result=f"{path}/result", events=f"{path}/events")


def _fields(job: Job) -> dict[str, object]:
    return {
        "job_id": job.job_id,
        "owner": job.owner,
        "filename": job.filename,
        "content_type": job.content_type,
        "size": job.size,
        "state": job.state,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "finished_at": job.finished_at,
        "error_reason": job.error_reason,
        "error_detail": job.error_detail,
        "links": _links(job.job_id),
    }


def job_view(job: Job) -> JobView:
    """What the API shows of a job."""
    return JobView.model_validate(_fields(job))


def job_detail(job: Job, history: Iterable[JobEvent]) -> JobDetail:
    """The job with its state history."""
    entries = [JobHistoryEntry(state=e.state, at=e.at, detail=e.detail) for e in history]
    return JobDetail.model_validate({**_fields(job), "history": entries})


def result_view(result: JobResult) -> ResultView:
    """A stored parse result."""
    return ResultView(
        job_id=result.job_id,
        text=result.text,
        metadata=dict(result.metadata),
        pages=result.pages,
        parser=result.parser,
        chunks=list(result.chunks),
    )


def search_hit_view(hit: SearchHit) -> SearchHitView:
    """One search hit."""
    return SearchHitView(
        job_id=hit.job_id,
        filename=hit.filename,
        chunk=hit.chunk_index,
        snippet=hit.snippet,
        score=hit.score,
    )
