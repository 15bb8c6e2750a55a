"""The pages and the session API, as a browser session uses them: roles, CSRF, friendly
errors, and a document's way from upload to result and search on the real pipeline."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from gateway_testing import record_audit
from pipeline_testing import daemons_for
from web_testing import Browser, WebGateway, csrf_of

from broker import BrokerSettings
from gateway.web.render import filesize
from schemas import max_input_bytes

pytestmark = [pytest.mark.integration]

SAMPLE = b"# Quarterly report\n\nThe zeppelin fleet grew by a third this quarter.\n"


def _form(*files: tuple[str, bytes, str]) -> aiohttp.FormData:
    form = aiohttp.FormData()
    for name, data, content_type in files:
        form.add_field("file", data, filename=name, content_type=content_type)
    return form


async def _upload(client: Browser, csrf: str | None, name: str = "report.md") -> Any:
    headers = {"X-CSRF-Token": csrf} if csrf is not None else {}
    return await client.post(
        "/web/api/jobs", data=_form((name, SAMPLE, "text/markdown")), headers=headers
    )


async def test_a_user_sees_the_upload_form_and_uploads_with_the_csrf_token(
    alice: Browser,
) -> None:
    html = await (await alice.get("/")).text()
    assert 'id="upload-form"' in html
    response = await _upload(alice, csrf_of(html))
    assert response.status == 202, await response.text()
    body = await response.json()
    assert body["jobs"][0]["filename"] == "report.md"


async def test_the_upload_form_shows_the_limit_of_each_format_the_parser_applies(
    alice: Browser, site: WebGateway
) -> None:
    html = await (await alice.get("/")).text()
    pdf = max_input_bytes("application/pdf", max_document_bytes=site.settings.max_upload_bytes)
    text = max_input_bytes("text/plain", max_document_bytes=site.settings.max_upload_bytes)
    assert f'data-max-bytes="{pdf}" data-max-text-bytes="{text}"' in html
    assert f"PDF up to {filesize(pdf)} each" in html
    assert f"text, Markdown, HTML, JSON and CSV up to {filesize(text)} each" in html
    assert ".text," in html  # the accepted extensions are the shared table's


async def test_an_upload_without_the_csrf_token_is_refused(
    alice: Browser, site: WebGateway
) -> None:
    response = await _upload(alice, None)
    assert response.status == 403
    assert (await response.json())["error"] == "csrf_failed"
    wrong = await _upload(alice, "forged-token")
    assert wrong.status == 403
    from gateway import STORE_KEY

    assert await site.app[STORE_KEY].list(owner="alice", limit=10) == []


async def test_a_cross_site_request_is_refused_even_with_the_token(alice: Browser) -> None:
    csrf = await alice.csrf()
    response = await alice.post(
        "/web/api/jobs",
        data=_form(("a.md", SAMPLE, "text/markdown")),
        headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"},
    )
    assert response.status == 403


async def test_a_viewer_sees_no_upload_form_and_cannot_upload(vera: Browser) -> None:
    html = await (await vera.get("/")).text()
    assert 'id="upload-form"' not in html
    assert "can read jobs but not upload" in html
    response = await _upload(vera, csrf_of(html))
    assert response.status == 403
    assert (await response.json())["error"] == "insufficient_scope"


@pytest.mark.parametrize("path", ["/admin/audit", "/admin/dlq"])
async def test_a_non_admin_is_refused_the_admin_pages(alice: Browser, path: str) -> None:
    response = await alice.get(path)
    assert response.status == 403
    assert "text/html" in response.headers["Content-Type"]
    assert "You may not see this" in await response.text()
    api = await alice.get("/web/api" + path.replace("/admin", "").replace("/audit", "/audit"))
    assert api.status in {403, 404}


async def test_a_non_admin_refused_an_admin_page_or_form_is_audited(
    alice: Browser, site: WebGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """These page 403s left no ``access.denied`` record, though the API's refusals do."""
    from gateway.web import CSRF_FIELD

    audited = record_audit(site.app, monkeypatch)
    for path in ("/admin/audit", "/admin/dlq"):
        assert (await alice.get(path)).status == 403
    replay = "/admin/dlq/" + "a" * 32 + "/replay"
    posted = await alice.post(replay, data={CSRF_FIELD: await alice.csrf()})
    assert posted.status == 403
    denied = [event for event in audited if event.type == "access.denied"]
    assert [event.action for event in denied] == [
        "GET /admin/audit",
        "GET /admin/dlq",
        f"POST {replay}",
    ]
    assert {event.actor for event in denied} == {"alice"}
    assert {event.outcome for event in denied} == {"failure"}


async def test_a_non_admin_is_refused_the_admin_session_api(alice: Browser) -> None:
    for path in ("/web/api/audit", "/web/api/dlq"):
        response = await alice.get(path)
        assert response.status == 403, path
    csrf = await alice.csrf()
    replay = await alice.post(
        "/web/api/dlq/" + "a" * 32 + "/replay", headers={"X-CSRF-Token": csrf}
    )
    assert replay.status == 403


async def test_the_replay_form_without_the_csrf_token_is_refused(root: Browser) -> None:
    response = await root.post("/admin/dlq/" + "a" * 32 + "/replay", data={})
    assert response.status == 403
    assert "security token" in await response.text()


async def test_an_admin_sees_the_audit_and_dlq_pages(root: Browser) -> None:
    audit = await root.get("/admin/audit")
    assert audit.status == 200
    html = await audit.text()
    assert 'id="audit-table"' in html
    assert '<script src="/static/audit.js"' in html
    dlq = await root.get("/admin/dlq")
    assert dlq.status == 200
    assert "Dead letters" in await dlq.text()
    bad = await root.get("/admin/audit?since=yesterday-ish")
    assert bad.status == 400
    assert "since must be" in await bad.text()


async def test_the_audit_page_says_so_when_the_audit_daemon_is_away(root: Browser) -> None:
    response = await root.get("/admin/audit")
    assert response.status == 200
    assert "the audit service does not answer" in await response.text()


async def test_unknown_pages_and_jobs_are_friendly_404s(alice: Browser) -> None:
    for path in ("/no-such-page", "/jobs/" + "f" * 32, "/jobs/not-an-id"):
        response = await alice.get(path)
        assert response.status == 404, path
        html = await response.text()
        assert "Not found" in html
        assert "Traceback" not in html
    api = await alice.get("/api/no-such-route")
    assert api.content_type == "application/json"


async def test_another_users_job_is_not_found(
    alice: Browser, root: Browser, site: WebGateway
) -> None:
    response = await _upload(alice, await alice.csrf())
    job_id = (await response.json())["jobs"][0]["job_id"]
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        bob = Browser(gateway=site, session=session)
        await bob.sign_in("bob")
        assert (await bob.get(f"/jobs/{job_id}")).status == 404
        assert (await bob.get(f"/web/api/jobs/{job_id}")).status == 404
    assert (await root.get(f"/jobs/{job_id}")).status == 200


async def test_static_assets_have_no_inline_script_and_pages_load_them(alice: Browser) -> None:
    html = await (await alice.get("/")).text()
    assert "<script>" not in html
    assert "onclick" not in html
    for asset in ("/static/app.css", "/static/common.js", "/static/jobs.js"):
        response = await alice.get(asset)
        assert response.status == 200, asset


async def _events_until_done(client: Browser, count: int) -> dict[str, dict[str, Any]]:
    """Read /web/api/events until ``count`` jobs are done; the last view of each job."""
    seen: dict[str, dict[str, Any]] = {}
    async with client.session.get(
        client.gateway.url + "/web/api/events", timeout=aiohttp.ClientTimeout(total=90)
    ) as stream:
        assert stream.status == 200
        assert stream.content_type == "text/event-stream"
        name = None
        async for raw in stream.content:
            line = raw.decode().rstrip("\r\n")
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and name == "job":
                job = json.loads(line.split(":", 1)[1])
                seen[job["job_id"]] = job
                done = [j for j in seen.values() if j["state"] in {"done", "failed"}]
                if len(done) >= count:
                    return seen
    raise AssertionError(f"the stream ended before {count} jobs finished: {seen}")


async def test_upload_watch_result_search_on_the_pipeline(
    alice: Browser, site: WebGateway, broker_settings: BrokerSettings
) -> None:
    async with daemons_for(site.app, broker_settings):
        csrf = await alice.csrf()
        ids = []
        for name in ("first.md", "second.md"):
            response = await _upload(alice, csrf, name)
            assert response.status == 202
            ids.append((await response.json())["jobs"][0]["job_id"])
        seen = await asyncio.wait_for(_events_until_done(alice, 2), 90)
        assert {seen[i]["state"] for i in ids} == {"done"}
        page = await alice.get(f"/jobs/{ids[0]}")
        html = await page.text()
        assert page.status == 200
        assert "zeppelin fleet" in html
        assert "Extracted text" in html
        assert "Chunks" in html
        assert "Audit trail" in html
        assert "job.submitted" in html or "No audit records" in html
        assert "audit service" not in html  # read through the audit daemon's query API
        search = await (await alice.get("/search?q=zeppelin")).text()
        assert "<mark>zeppelin</mark>" in search.lower()
        assert f"/jobs/{ids[0]}" in search or f"/jobs/{ids[1]}" in search


async def test_a_search_query_is_escaped(alice: Browser) -> None:
    html = await (await alice.get("/search?q=%3Cscript%3Ealert(1)%3C/script%3E")).text()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html


async def test_the_pages_live_stream_counts_against_the_users_share(
    alice: Browser, site: WebGateway
) -> None:
    """``/web/api/events`` of a user with no unfinished job followed nothing and so was never
    counted: one user could open them without bound."""
    from gateway import HUB_KEY

    hub = site.app[HUB_KEY]
    hub.max_streams_per_owner = 2
    url = site.url + "/web/api/events"
    held = [await alice.session.get(url) for _ in range(2)]
    assert [stream.status for stream in held] == [200, 200]
    assert hub.streams_of("alice") == 2
    refused = await alice.session.get(url)
    assert refused.status == 429
    assert (await refused.json())["error"] == "too_many_requests"
    for stream in held:
        stream.close()
