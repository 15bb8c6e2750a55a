"""The jobs API: who sees what, paging, results, deletion, search, live events, error shapes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from gateway_testing import Gateway, error_body, next_event, read_events, record_audit
from store_testing import BACKENDS

from broker import BrokerSettings
from gateway import GatewaySettings, create_app
from gateway.operations import Operation
from store import NewResult, ResultChunk

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


async def submit(gateway: Gateway, who: str = "alice", text: bytes = b"hello") -> str:
    response = await gateway.upload([(f"{who}.txt", "text/plain", text)], who=who)
    assert response.status == 202, await response.text()
    return str((await response.json())["jobs"][0]["job_id"])


async def finish(gateway: Gateway, job_id: str, text: str) -> None:
    """Do what the worker does when a parse completes (the pipeline tests do it for real)."""
    await gateway.store.transition(job_id, "processing")
    await gateway.store.store_result(
        job_id,
        NewResult(
            text=text,
            metadata={"format": "text"},
            chunks=(ResultChunk(index=0, start=0, end=len(text)),),
            pages=None,
            parser="text",
        ),
    )
    await gateway.store.transition(job_id, "done")


async def get(gateway: Gateway, path: str, who: str = "alice") -> Any:
    return await gateway.client.get(path, headers=gateway.auth(who))


async def test_health_and_status(gateway: Gateway) -> None:
    assert await (await gateway.client.get("/api/health")).json() == {"status": "ok"}
    assert await (await gateway.client.get("/api/status")).json() == {"status": "ok"}
    detailed = await (await get(gateway, "/api/status", "vera")).json()
    assert detailed["status"] == "ok"
    assert detailed["broker"] is True
    assert detailed["subject"] == "vera"
    assert detailed["scopes"] == ["jobs:read"]
    assert isinstance(detailed["version"], str)
    response = await gateway.client.get("/api/status", headers={"Authorization": "Bearer junk"})
    await error_body(response, 401, "unauthorized")


async def test_a_job_is_visible_to_its_owner_and_an_admin_only(gateway: Gateway) -> None:
    job_id = await submit(gateway, "alice")
    mine = await get(gateway, f"/api/jobs/{job_id}")
    assert mine.status == 200
    body = await mine.json()
    assert body["owner"] == "alice"
    assert body["state"] == "queued"
    assert [entry["state"] for entry in body["history"]] == ["queued"]
    assert body["links"] == {
        "self": f"/api/jobs/{job_id}",
        "result": f"/api/jobs/{job_id}/result",
        "events": f"/api/jobs/{job_id}/events",
    }
    assert (await get(gateway, f"/api/jobs/{job_id}", "root")).status == 200
    for path in (f"/api/jobs/{job_id}", f"/api/jobs/{job_id}/result", f"/api/jobs/{job_id}/events"):
        await error_body(await get(gateway, path, "bob"), 404, "not_found")
    response = await gateway.client.delete(f"/api/jobs/{job_id}", headers=gateway.auth("bob"))
    await error_body(response, 404, "not_found")
    for bad in ("nope", "A" * 32, "0" * 31):
        await error_body(await get(gateway, f"/api/jobs/{bad}"), 404, "not_found")


async def test_another_users_result_is_404_even_when_done(gateway: Gateway) -> None:
    job_id = await submit(gateway, "alice")
    await finish(gateway, job_id, "alice's private words")
    assert (await get(gateway, f"/api/jobs/{job_id}/result")).status == 200
    await error_body(await get(gateway, f"/api/jobs/{job_id}/result", "bob"), 404, "not_found")


async def test_listing_shows_own_jobs_and_admins_may_see_all(gateway: Gateway) -> None:
    alice = [await submit(gateway, "alice", f"a{n}".encode()) for n in range(3)]
    bob = await submit(gateway, "bob")
    listed = await (await get(gateway, "/api/jobs")).json()
    assert [job["job_id"] for job in listed["jobs"]] == alice[::-1]
    assert listed["next"] is None
    assert [
        j["job_id"] for j in (await (await get(gateway, "/api/jobs", "bob")).json())["jobs"]
    ] == [bob]

    page = await (await get(gateway, "/api/jobs?limit=2")).json()
    assert [job["job_id"] for job in page["jobs"]] == alice[:0:-1]
    rest = await (await get(gateway, f"/api/jobs?limit=2&cursor={page['next']}")).json()
    assert [job["job_id"] for job in rest["jobs"]] == alice[:1]

    everyone = await (await get(gateway, "/api/jobs?all=true", "root")).json()
    assert {job["job_id"] for job in everyone["jobs"]} == {*alice, bob}
    only_bob = await (await get(gateway, "/api/jobs?owner=bob", "root")).json()
    assert [job["job_id"] for job in only_bob["jobs"]] == [bob]
    await error_body(await get(gateway, "/api/jobs?all=true"), 403, "forbidden")
    await error_body(await get(gateway, "/api/jobs?owner=bob"), 403, "forbidden")

    await finish(gateway, alice[0], "done text")
    done = await (await get(gateway, "/api/jobs?state=done")).json()
    assert [job["job_id"] for job in done["jobs"]] == [alice[0]]


@pytest.mark.parametrize("query", ["all=true", "owner=bob"])
async def test_a_user_asking_for_others_jobs_is_an_audited_403(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch, query: str
) -> None:
    """This 403 left no ``access.denied`` record, though the scope guard's 403s do."""
    audited = record_audit(gateway.app, monkeypatch)
    await error_body(await get(gateway, f"/api/jobs?{query}"), 403, "forbidden")
    denied = [event for event in audited if event.type == "access.denied"]
    assert len(denied) == 1
    assert denied[0].actor == "alice"
    assert denied[0].outcome == "failure"
    assert denied[0].action == "GET /api/jobs"
    assert "admin" in (denied[0].detail or "")


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=201", "limit=x", "state=bogus", "cursor=abc", "all=maybe"]
)
async def test_bad_list_parameters_are_400(gateway: Gateway, query: str) -> None:
    await error_body(await get(gateway, f"/api/jobs?{query}"), 400, "bad_request")


async def test_result_is_409_until_done_then_the_text_and_chunks(gateway: Gateway) -> None:
    job_id = await submit(gateway)
    await error_body(await get(gateway, f"/api/jobs/{job_id}/result"), 409, "not_ready")
    await finish(gateway, job_id, "the harbour at dawn")
    body = await (await get(gateway, f"/api/jobs/{job_id}/result")).json()
    assert body == {
        "job_id": job_id,
        "text": "the harbour at dawn",
        "metadata": {"format": "text"},
        "pages": None,
        "parser": "text",
        "chunks": [{"index": 0, "start": 0, "end": 19, "page": None}],
    }
    job = await (await get(gateway, f"/api/jobs/{job_id}")).json()
    assert [entry["state"] for entry in job["history"]] == ["queued", "processing", "done"]
    assert job["finished_at"] is not None


async def test_delete_waits_for_a_final_state_then_removes_job_and_blob(gateway: Gateway) -> None:
    job_id = await submit(gateway, text=b"to be deleted")
    response = await gateway.client.delete(f"/api/jobs/{job_id}", headers=gateway.auth())
    await error_body(response, 409, "conflict")
    await finish(gateway, job_id, "to be deleted")
    viewer = await gateway.client.delete(
        f"/api/jobs/{job_id}", headers=gateway.auth("alice", "viewer")
    )
    await error_body(viewer, 403, "insufficient_scope")
    response = await gateway.client.delete(f"/api/jobs/{job_id}", headers=gateway.auth())
    assert response.status == 204
    await error_body(await get(gateway, f"/api/jobs/{job_id}"), 404, "not_found")
    assert await gateway.all_jobs() == []
    assert gateway.blob_files() == []


async def test_an_admin_may_delete_anyones_job(gateway: Gateway) -> None:
    job_id = await submit(gateway, "alice")
    await finish(gateway, job_id, "x")
    response = await gateway.client.delete(f"/api/jobs/{job_id}", headers=gateway.auth("root"))
    assert response.status == 204


@pytest.mark.parametrize("broker_settings", BACKENDS, indirect=True)
async def test_search_finds_own_documents_only(gateway: Gateway) -> None:
    mine = await submit(gateway, "alice", b"lighthouse")
    theirs = await submit(gateway, "bob", b"lighthouse too")
    await finish(gateway, mine, "a lighthouse on the cape")
    await finish(gateway, theirs, "another lighthouse")
    body = await (await get(gateway, "/api/search?q=lighthouse")).json()
    [hit] = body["hits"]
    assert hit["job_id"] == mine
    assert hit["filename"] == "alice.txt"
    assert hit["chunk"] == 0
    assert "[lighthouse]" in hit["snippet"]
    assert isinstance(hit["score"], float)
    assert (await (await get(gateway, "/api/search?q=nothing+here")).json()) == {"hits": []}
    assert (await (await get(gateway, "/api/search?q=%22%29%20OR%20*")).json()) == {"hits": []}
    for query in ("", "q=", "q=%20", "q=" + "a" * 1001, "q=x&limit=0"):
        await error_body(await get(gateway, f"/api/search?{query}"), 400, "bad_request")


async def test_events_stream_sends_the_state_then_each_change_then_closes(gateway: Gateway) -> None:
    job_id = await submit(gateway)
    response = await get(gateway, f"/api/jobs/{job_id}/events")
    assert response.status == 200
    assert response.content_type == "text/event-stream"
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value
    async with asyncio.timeout(30):
        first = await next_event(response)
    assert first is not None
    assert first[0] == "state"
    assert first[1]["state"] == "queued"
    await finish(gateway, job_id, "text")
    async with asyncio.timeout(30):
        events = await read_events(response)
    states = [data["state"] for name, data in events if name == "state"]
    assert states[-1] == "done"
    assert all(data["job_id"] == job_id for _, data in events)


async def test_a_finished_jobs_stream_sends_one_event_and_closes(gateway: Gateway) -> None:
    job_id = await submit(gateway)
    await finish(gateway, job_id, "text")
    async with asyncio.timeout(30):
        events = await read_events(await get(gateway, f"/api/jobs/{job_id}/events"))
    assert [(name, data["state"]) for name, data in events] == [("state", "done")]


async def test_errors_are_json_with_security_headers(gateway: Gateway) -> None:
    cases = [
        (await gateway.client.get("/api/nowhere"), 404, "not_found"),
        (await gateway.client.put("/api/jobs", headers=gateway.auth()), 405, "method_not_allowed"),
        (await gateway.client.get("/api/jobs"), 401, "unauthorized"),
    ]
    for response, status, code in cases:
        await error_body(response, status, code)
        for name, value in SECURITY_HEADERS.items():
            assert response.headers[name] == value
        assert "Content-Security-Policy" in response.headers
    assert "POST" in cases[1][0].headers["Allow"]
    ok = await get(gateway, "/api/jobs")
    assert ok.headers["Cache-Control"] == "no-store"
    for name, value in SECURITY_HEADERS.items():
        assert ok.headers[name] == value


async def test_an_unexpected_error_is_a_500_without_a_trace(
    gateway_settings: GatewaySettings, broker_settings: BrokerSettings, gateway: Gateway
) -> None:
    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("secret internals /etc/shadow")

    operation = Operation("GET", "/api/broken", broken, "broken", "broken", "test", auth="none")
    app = create_app(gateway_settings, broker_settings=broker_settings, operations=[operation])
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/api/broken")
        assert await response.json() == {"error": "internal", "detail": "internal error"}
        assert response.status == 500
        assert "secret" not in await response.text()
