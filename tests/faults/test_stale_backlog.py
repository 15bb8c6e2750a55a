"""A backlog that waits past the envelope lifetime: dead-lettered as expired, never processed
late; an admin replays it (re-sealed under a fresh envelope) and it completes; all audited."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from daemon_processes import Daemons
from faults_testing import (
    JobLedger,
    audit_types_by_job,
    text_document,
    wait_audit,
    wait_queue_depth,
)
from gateway_testing import Gateway

from broker import BrokerSettings

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(180)]

JOBS = 3
LIFETIME = 5  # the least SEALFLOW_ENVELOPE_LIFETIME allows


@pytest.fixture
def broker_settings(broker_settings: BrokerSettings) -> BrokerSettings:
    """The gateway seals with the shortest envelope lifetime."""
    return broker_settings.model_copy(update={"envelope_lifetime": LIFETIME})


async def test_stale_backlog_is_dead_lettered_as_expired_then_replayed_by_an_admin(
    daemons: Daemons, gateway: Gateway, bus: JobLedger, data_dir: Path
) -> None:
    daemons.start("audit", "parser")  # no worker: the jobs wait in worker.jobs
    jobs = []
    for index in range(JOBS):
        response = await gateway.upload([(f"late-{index}.txt", "text/plain", text_document(index))])
        assert response.status == 202, await response.text()
        jobs.append((await response.json())["jobs"][0]["job_id"])

    # The broker dead-letters each message once its AMQP expiration (= the envelope's
    # remaining life) has passed; the wait is on the DLQ filling, bounded.
    channel, topology = bus.publisher.channel, bus.publisher.topology
    await wait_queue_depth(channel, topology.queue("worker.jobs.dlq"), JOBS, timeout=LIFETIME + 30)
    daemons.start("worker")
    admin = gateway.auth("root")
    listing = await gateway.client.get("/api/dlq?queue=worker.jobs", headers=admin)
    assert listing.status == 200, await listing.text()
    letters = (await listing.json())["messages"]
    assert sorted(letter["job"] for letter in letters) == sorted(jobs)
    assert {letter["reason"] for letter in letters} == {"expired"}
    assert all(letter["verified"] and letter["replayable"] for letter in letters)
    # Not processed: still queued, and nobody started them.
    assert await bus.states(jobs) == dict.fromkeys(jobs, "queued")

    for letter in letters:
        replay = await gateway.client.post(f"/api/dlq/{letter['id']}/replay", headers=admin)
        assert replay.status == 202, await replay.text()
        assert (await replay.json())["jti"] != letter["jti"]  # a fresh envelope
    assert await bus.wait_final(jobs) == dict.fromkeys(jobs, "done")
    assert bus.result_counts() == dict.fromkeys(jobs, 1)
    remaining = await gateway.client.get("/api/dlq", headers=admin)
    assert (await remaining.json())["messages"] == []

    trail = ("job.submitted", "dlq.replayed", "job.started", "document.parsed", "job.completed")
    records = await wait_audit(
        data_dir,
        lambda rs: all(audit_types_by_job(rs).get(j, Counter())["job.completed"] for j in jobs),
    )
    by_job = audit_types_by_job(records)
    for job in jobs:
        assert {t: by_job[job][t] for t in trail} == dict.fromkeys(trail, 1), by_job[job]
        ordered = [r.event.type for r in records if r.event.job == job and r.event.type in trail]
        assert ordered == list(trail)
        [replayed] = [r for r in records if r.event.job == job and r.event.type == "dlq.replayed"]
        assert replayed.event.actor == "root"
        assert "(expired)" in (replayed.event.detail or "")
