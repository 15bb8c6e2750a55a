"""The per-user quota on jobs in flight: one user's backlog is refused at the door with 429."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from gateway_testing import Gateway, error_body, record_audit

from broker import BrokerSettings
from gateway import GatewaySettings, create_app

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture
async def quota3(
    gateway_settings: GatewaySettings, broker_settings: BrokerSettings, gateway: Gateway
) -> AsyncIterator[Gateway]:
    """The gateway with a quota of three jobs in flight per user (no worker runs here)."""
    settings = gateway_settings.model_copy(
        update={"max_jobs_in_flight_per_user": 3, "quota_retry_after": 17}
    )
    app = create_app(settings, broker_settings=broker_settings)
    async with TestClient(TestServer(app)) as client:
        yield Gateway(client=client, settings=settings, issuer=gateway.issuer)


def _files(*names: str) -> list[tuple[str, str | None, bytes]]:
    return [(name, "text/plain", f"the text of {name}\n".encode()) for name in names]


async def test_an_upload_past_the_quota_is_429_and_leaves_nothing_behind(
    quota3: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The review's starving user queued without bound; now a user has at most a quota."""
    audited = record_audit(quota3.app, monkeypatch)
    assert (await quota3.upload(_files("a.txt", "b.txt"))).status == 202
    blobs_before = quota3.blob_files()
    refused = await quota3.upload(_files("c.txt", "d.txt"))
    body = await error_body(refused, 429, "quota_exceeded")
    assert "at most 3" in body["detail"]
    assert refused.headers["Retry-After"] == "17"
    assert len(await quota3.all_jobs()) == 2
    assert quota3.blob_files() == blobs_before  # the refused files were not kept
    rejected = [event for event in audited if event.type == "upload.rejected"]
    assert [(event.actor, event.reason) for event in rejected] == [("alice", "quota_exceeded")]
    assert (await quota3.upload(_files("c.txt"))).status == 202  # exactly up to the quota
    await error_body(await quota3.upload(_files("e.txt")), 429, "quota_exceeded")
    assert (await quota3.upload(_files("b.txt"), who="bob")).status == 202  # others unaffected


async def test_a_finished_job_frees_its_place(quota3: Gateway) -> None:
    response = await quota3.upload(_files("a.txt", "b.txt", "c.txt"))
    assert response.status == 202
    first = (await response.json())["jobs"][0]["job_id"]
    await error_body(await quota3.upload(_files("d.txt")), 429, "quota_exceeded")
    await quota3.store.transition(first, "processing")
    await error_body(await quota3.upload(_files("d.txt")), 429, "quota_exceeded")
    await quota3.store.transition(first, "failed", error_reason="test", detail="failed")
    assert (await quota3.upload(_files("d.txt"))).status == 202


async def test_concurrent_uploads_cannot_slip_past_the_quota_together(quota3: Gateway) -> None:
    answers = await asyncio.gather(*(quota3.upload(_files(f"{i}.txt")) for i in range(8)))
    assert sorted(answer.status for answer in answers) == [202] * 3 + [429] * 5
    assert len(await quota3.all_jobs()) == 3
