"""End to end on a real broker: upload through the gateway, the worker and parser do the work,
the SSE stream (woken by ``gateway.events``) sees ``done``, the result and search work, and
the audit log holds the trail, refusals included."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from documents_testing import DOCUMENTS
from gateway_testing import Gateway, error_body, read_events

from gateway import GatewaySettings

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(180)]


@pytest.fixture
def gateway_settings(gateway_settings: GatewaySettings) -> GatewaySettings:
    """No polling fallback worth the name: only ``gateway.events`` can wake a stream in time."""
    return gateway_settings.model_copy(update={"sse_poll_seconds": 300.0})


async def _audit(
    gateway: Gateway, predicate: Callable[[dict[str, Any]], bool], query: str = ""
) -> list[dict[str, Any]]:
    """The records that ``predicate`` holds for, read as an admin through ``/api/audit`` (the
    gateway reads the audit daemon's query API; the log's files are on the daemon's side)."""
    async with asyncio.timeout(30):
        while True:
            response = await gateway.client.get(
                f"/api/audit?limit=1000&{query}", headers=gateway.auth("root")
            )
            assert response.status == 200, await response.text()
            found = [r for r in (await response.json())["records"] if predicate(r)]
            if found:
                return found
            await asyncio.sleep(0.05)


async def test_each_format_reaches_done_live_with_result_search_and_audit_trail(
    gateway: Gateway, pipeline: None
) -> None:
    files = [(name, ctype, data) for name, (ctype, data) in DOCUMENTS.items()]
    response = await gateway.upload(files)
    assert response.status == 202, await response.text()
    jobs = {job["filename"]: job["job_id"] for job in (await response.json())["jobs"]}
    assert set(jobs) == set(DOCUMENTS)

    async def watch(job_id: str) -> list[str]:
        stream = await gateway.client.get(f"/api/jobs/{job_id}/events", headers=gateway.auth())
        assert stream.status == 200
        return [data["state"] for name, data in await read_events(stream) if name == "state"]

    async with asyncio.timeout(120):
        seen = await asyncio.gather(*(watch(job_id) for job_id in jobs.values()))
    for states in seen:
        assert states[-1] == "done", states
        assert set(states) <= {"queued", "processing", "done"}

    for name, job_id in jobs.items():
        result = await gateway.client.get(f"/api/jobs/{job_id}/result", headers=gateway.auth())
        assert result.status == 200
        body = await result.json()
        assert "words about" in body["text"], (name, body["text"])
        assert "evil()" not in body["text"]
        assert body["chunks"]

    hits = await (
        await gateway.client.get("/api/search?q=lighthouses", headers=gateway.auth())
    ).json()
    assert [hit["job_id"] for hit in hits["hits"]] == [jobs["readme.md"]]
    other = await (
        await gateway.client.get("/api/search?q=lighthouses", headers=gateway.auth("bob"))
    ).json()
    assert other == {"hits": []}

    pdf_job = jobs["doc.pdf"]
    await _audit(gateway, lambda r: r["event"]["type"] == "job.completed", f"job={pdf_job}")
    trail = [
        (r["event"]["source"], r["event"]["type"])
        for r in await _audit(gateway, lambda r: True, f"job={pdf_job}")
    ]
    assert trail[0] == ("gateway", "job.submitted")
    assert ("worker", "job.completed") in trail


async def test_refusals_are_audited_with_the_caller(gateway: Gateway, pipeline: None) -> None:
    await error_body(
        await gateway.upload([("a.txt", "text/plain", b"hi")], who="vera"),
        403,
        "insufficient_scope",
    )
    await error_body(await gateway.upload([("a.png", "image/png", b"\x89PNG")], who="bob"), 415)
    denied = await _audit(gateway, lambda r: r["event"]["actor"] == "vera", "type=access.denied")
    assert denied[0]["event"]["outcome"] == "failure"
    rejected = await _audit(gateway, lambda r: True, "type=upload.rejected")
    assert rejected[0]["event"]["actor"] == "bob"
    assert rejected[0]["event"]["reason"] == "unsupported_type"
