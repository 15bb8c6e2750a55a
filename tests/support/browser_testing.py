"""Browser test helpers: signing in on the identity's form in a real page, and dead letters
for the admin pages."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime

from gateway_testing import PASSWORD
from playwright.async_api import Page
from web_testing import WebGateway

from broker import REJECT_REASON_HEADER, Sealer
from gateway import PUBLISHER_KEY, RUNTIME_KEY, STORE_KEY
from keys import KeyRing
from schemas import JobSubmitted, ParseRequested
from store import BlobStore, NewJob


async def sign_in(page: Page, user: str) -> None:
    """On the identity's form (where a sign-in step has led): fill it and submit."""
    await page.wait_for_selector('form[action="/authorize"]')
    await page.fill('input[name="username"]', user)
    await page.fill('input[name="password"]', PASSWORD)
    async with page.expect_navigation():
        await page.click('button[type="submit"]')


async def dead_letters(site: WebGateway) -> str:
    """Two dead letters: an expired job.submitted (replayable; its job id is returned) and a
    parse.requested the gateway may not re-seal."""
    app = site.app
    publisher, runtime, store = app[PUBLISHER_KEY], app[RUNTIME_KEY], app[STORE_KEY]
    data = b"A late harbour report: the tide waited for nobody.\n"
    sha = BlobStore(site.settings.data_dir / "blobs").put(data)
    job_id = secrets.token_hex(16)
    await store.create(
        NewJob(
            job_id=job_id,
            owner="alice",
            filename="late-report.txt",
            content_type="text/plain",
            size=len(data),
            blob_sha256=sha,
            trace=secrets.token_hex(16),
        )
    )
    body = JobSubmitted(
        job_id=job_id,
        owner="alice",
        filename="late-report.txt",
        content_type="text/plain",
        size=len(data),
        blob_sha256=sha,
        submitted_at=datetime.now(UTC),
    )
    stale = Sealer(
        KeyRing.load(site.settings.keys_dir, "gateway").signing_key(),
        clock=lambda: time.time() - 600,
    ).seal(body, typ="job.submitted", aud="worker", sub="alice", job=job_id, act={"sub": "gateway"})
    worker = Sealer(KeyRing.load(site.settings.keys_dir, "worker").signing_key())
    other = secrets.token_hex(16)
    request = ParseRequested(
        job_id=other,
        blob_sha256="1" * 64,
        filename="scan.pdf",
        content_type="application/pdf",
        size=3,
        requested_at=datetime.now(UTC),
    )
    parse = worker.seal(request, typ="parse.requested", aud="parser", sub="bob", job=other)
    for sealed, queue, reason in (
        (stale, "worker.jobs.dlq", "expired"),
        (parse, "parser.requests.dlq", "retries_exhausted"),
    ):
        message = publisher.message_for(sealed)
        message.headers[REJECT_REASON_HEADER] = reason
        message.expiration = None
        await publisher.publish_raw(message, routing_key=runtime.topology.queue(queue))
    return job_id
