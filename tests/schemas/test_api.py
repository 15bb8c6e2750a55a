"""The gateway's API bodies: closed, and the shapes the API contract names."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from schemas import (
    ErrorBody,
    JobDetail,
    JobHistoryEntry,
    JobLinks,
    JobList,
    JobView,
    SearchHits,
    SearchHitView,
    StatusView,
    UploadAccepted,
    UploadedJob,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _view(**extra: object) -> dict[str, object]:
    return {
        "job_id": "a" * 32,
        "owner": "alice",
        "filename": "notes.txt",
        "content_type": "text/plain",
        "size": 5,
        "state": "queued",
        "created_at": NOW,
        "updated_at": NOW,
        "links": JobLinks(
            self="/api/jobs/x", result="/api/jobs/x/result", events="/api/jobs/x/events"
        ),
        **extra,
    }


def test_job_view_serialises_with_iso_times_and_links() -> None:
    body = JobView.model_validate(_view()).model_dump(mode="json")
    assert body["created_at"] == "2026-12-01T12:00:00Z"
    assert body["finished_at"] is None
    assert body["links"] == {
        "self": "/api/jobs/x",
        "result": "/api/jobs/x/result",
        "events": "/api/jobs/x/events",
    }


def test_job_detail_adds_history() -> None:
    detail = JobDetail.model_validate(
        _view(history=[JobHistoryEntry(state="queued", at=NOW, detail=None)])
    )
    assert detail.model_dump(mode="json")["history"] == [
        {"state": "queued", "at": "2026-12-01T12:00:00Z", "detail": None}
    ]


def test_models_are_closed_and_validated() -> None:
    with pytest.raises(ValidationError):
        JobView.model_validate(_view(secret="x"))
    with pytest.raises(ValidationError):
        JobView.model_validate(_view(state="exploded"))
    with pytest.raises(ValidationError):
        JobView.model_validate(_view(size=-1))
    with pytest.raises(ValidationError):
        ErrorBody.model_validate({"error": "x"})


def test_the_contract_shapes() -> None:
    accepted = UploadAccepted(jobs=[UploadedJob(job_id="b" * 32, filename="a", status_url="/u")])
    assert accepted.model_dump() == {
        "jobs": [{"job_id": "b" * 32, "filename": "a", "state": "queued", "status_url": "/u"}]
    }
    assert JobList(jobs=[]).model_dump() == {"jobs": [], "next": None}
    assert StatusView(status="ok").model_dump(exclude_none=True) == {"status": "ok"}
    hit = SearchHitView(job_id="c" * 32, filename="f", chunk=0, snippet="[x]", score=1.5)
    assert SearchHits(hits=[hit]).model_dump()["hits"][0]["chunk"] == 0


def test_json_schemas_render_for_openapi() -> None:
    for model in (JobDetail, JobList, UploadAccepted, SearchHits, StatusView, ErrorBody):
        schema = model.model_json_schema(mode="serialization")
        assert schema["type"] == "object"
        assert schema.get("additionalProperties") is False
