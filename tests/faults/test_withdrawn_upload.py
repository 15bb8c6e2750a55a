"""An upload the gateway withdrew (its publish was not confirmed, its client got 503) whose
message reached the broker all the same: the worker dead-letters it, and no job appears."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from daemon_processes import Daemons
from faults_testing import (
    JobLedger,
    text_document,
    wait_audit,
    wait_queue_depth,
)

from broker import REJECT_REASON_HEADER
from schemas import JobSubmitted

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(120)]


async def test_job_submitted_without_a_job_record_is_dead_lettered_not_created(
    daemons: Daemons, bus: JobLedger, data_dir: Path
) -> None:
    daemons.start("audit", "worker")
    data = text_document(0)
    sha = bus.blobs.put(data)
    ghost = "0" * 31 + "1"
    sealed = await bus.publisher.send(
        JobSubmitted(
            job_id=ghost,
            owner="alice",
            filename="ghost.txt",
            content_type="text/plain",
            size=len(data),
            blob_sha256=sha,
            submitted_at=datetime.now(UTC),
        ),
        typ="job.submitted",
        aud="worker",
        sub="alice",
        job=ghost,
        act={"sub": "gateway"},
    )
    dlq = bus.publisher.topology.queue("worker.jobs.dlq")
    await wait_queue_depth(bus.publisher.channel, dlq, 1)
    queue = await bus.publisher.channel.get_queue(dlq, ensure=False)
    letter = await queue.get(no_ack=True)
    assert letter.message_id == sealed.jti
    assert letter.headers[REJECT_REASON_HEADER] == "job_unknown"
    assert await bus.store.get(ghost) is None
    records = await wait_audit(
        data_dir, lambda rs: any(r.event.type == "message.dead_lettered" for r in rs)
    )
    [dead] = [r for r in records if r.event.type == "message.dead_lettered"]
    assert (dead.event.reason, dead.event.job, dead.event.jti) == ("job_unknown", ghost, sealed.jti)
    assert not [r for r in records if r.event.type == "job.started"]
