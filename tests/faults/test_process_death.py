"""SIGKILL the worker, then the parser, then the audit service in the middle of work.

Each is restarted. What must hold: every job reaches ``done`` exactly once (one result, one
pass through each state), the gateway is told of every job, and the audit log is unbroken —
every job's trail complete, the chain and checkpoints verified (library and CLI).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from daemon_processes import REPO, Daemons
from faults_testing import (
    JobLedger,
    audit_records,
    audit_types_by_job,
    drain,
    text_document,
    wait_audit,
)

from audit import verify_log
from keys import TrustStore

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(240)]

BATCH = 12
TRAIL = ("job.submitted", "job.started", "document.parsed", "job.completed")


async def _batch(bus: JobLedger, size: int = BATCH) -> list[str]:
    return [await bus.submit(text_document(len(bus.submitted))) for _ in range(size)]


async def test_sigkill_of_each_daemon_mid_work_loses_nothing_and_repeats_nothing(
    daemons: Daemons, bus: JobLedger, data_dir: Path, keys_dir: Path, env: dict[str, str]
) -> None:
    daemons.start("audit", "parser", "worker")

    # The worker dies holding deliveries: it has handled some of the batch, not all.
    worker = daemons["worker"]
    mark = worker.mark()
    await _batch(bus)
    worker.wait_for("message.handled", count=3, since=mark)
    daemons.kill("worker")
    daemons.start("worker")

    parser = daemons["parser"]
    mark = parser.mark()
    await _batch(bus)
    parser.wait_for("message.handled", count=2, since=mark)
    daemons.kill("parser")
    daemons.start("parser")

    audit = daemons["audit"]
    mark = audit.mark()
    await _batch(bus)
    audit.wait_for("message.handled", count=5, since=mark)
    daemons.kill("audit")
    daemons.start("audit")

    jobs = list(bus.submitted)
    states = await bus.wait_final(jobs)
    assert Counter(states.values()) == {"done": len(jobs)}

    # Exactly once in the store: one result, one pass through each state.
    assert bus.result_counts() == dict.fromkeys(jobs, 1)
    history = bus.history()
    assert {job: tuple(history.get(job, ())) for job in jobs} == dict.fromkeys(
        jobs, ("queued", "processing", "done")
    )

    # The gateway (not running) is told of every job. Events are at least once: a worker
    # killed between the broker's confirm and its ledger write sends one again (the gateway
    # only wakes live streams with them; the store above is the truth).
    events = await drain(bus.publisher.channel, bus.publisher.topology.queue("gateway.events"))
    completed = Counter(json.loads(m.body)["job_id"] for m in events if m.type == "job.completed")
    assert set(completed) == set(jobs)
    print(f"job.completed events sent twice after a SIGKILL: {sum(completed.values()) - len(jobs)}")

    # No gap in the audit log: every job's whole trail, each decision once.
    records = await wait_audit(
        data_dir,
        lambda rs: all(
            all(counts[t] for t in TRAIL)
            for counts in (audit_types_by_job(rs).get(job, Counter()) for job in jobs)
        ),
        timeout=30,
    )
    by_job = audit_types_by_job(records)
    for job in jobs:
        assert {t: by_job[job][t] for t in TRAIL} == dict.fromkeys(TRAIL, 1), (job, by_job[job])
    assert [r.seq for r in records] == list(range(records[0].seq, records[0].seq + len(records)))
    assert not [r for r in records if r.event.outcome == "rejected"]

    assert set(daemons.stop_all().values()) == {0}
    report = verify_log(data_dir / "audit", TrustStore.from_rings(keys_dir))
    assert report.ok, report
    cli = subprocess.run(
        [sys.executable, "-m", "sealflow", "audit", "verify"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert "intact" in cli.stdout
    assert len(audit_records(data_dir)) >= len(records)
