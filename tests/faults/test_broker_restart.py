"""The broker goes away with jobs flowing, and comes back (``rabbitmqctl stop_app``/``start_app``).

Gateway in this process, worker, parser and audit as subprocesses. What must hold: every job
accepted before, in flight and after reaches exactly one final state with one result; an
upload while the broker is away is answered ``503`` within a bounded time and leaves no job;
every daemon and the gateway reconnect by themselves. The outage is seconds long, and the
broker is started again in a ``finally`` whatever happens: other test runs share it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import pytest
from daemon_processes import PIPELINE_DAEMONS, Daemons
from faults_testing import (
    FINAL_STATES,
    JobLedger,
    audit_types_by_job,
    broker_outage,
    can_restart_broker,
    drain,
    text_document,
    wait_audit,
)
from gateway_testing import Gateway, error_body
from sealflow_testing import queue_counts

from broker import REJECT_REASON_HEADER
from gateway import RUNTIME_KEY

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(240)]

UNAVAILABLE_WITHIN = 30.0
"""Longest an upload may take to be refused while the broker is away (confirm timeouts)."""
MAX_UPLOADS_DURING = 60


async def _upload(gateway: Gateway, index: int) -> str:
    response = await gateway.upload([(f"doc-{index}.txt", "text/plain", text_document(index))])
    assert response.status == 202, await response.text()
    body = await response.json()
    return str(body["jobs"][0]["job_id"])


async def test_jobs_survive_a_broker_restart_and_uploads_get_503_while_it_is_away(
    amqp_url: str, daemons: Daemons, gateway: Gateway, bus: JobLedger, data_dir: Path
) -> None:
    why_not = can_restart_broker(amqp_url)
    if why_not is not None:
        pytest.skip(f"stops and starts only a local RabbitMQ with rabbitmqctl: {why_not}")
    daemons.start(*PIPELINE_DAEMONS)
    runtime = gateway.app[RUNTIME_KEY]
    assert runtime.connection is not None
    gateway_back = asyncio.Event()
    gateway_back_at: list[float] = []

    def on_gateway_reconnect(_: object) -> None:
        gateway_back_at.append(time.time())
        gateway_back.set()

    runtime.connection.reconnect_callbacks.add(on_gateway_reconnect)

    before = [await _upload(gateway, i) for i in range(6)]
    await bus.wait_final(before)
    marks = {name: daemons[name].mark() for name in PIPELINE_DAEMONS}
    during: list[str] = []
    refusals: list[float] = []

    async def upload_while(index: int) -> None:
        started = time.monotonic()
        async with asyncio.timeout(UNAVAILABLE_WITHIN):
            response = await gateway.upload(
                [(f"during-{index}.txt", "text/plain", text_document(100 + index))]
            )
        if response.status == 202:
            during.append(str((await response.json())["jobs"][0]["job_id"]))
        else:
            await error_body(response, 503, "unavailable")
            refusals.append(time.monotonic() - started)

    async with broker_outage(amqp_url) as outage:
        # Uploads keep coming while the broker stops: the first are accepted and caught in
        # flight, the later ones refused.
        index = 0
        while not outage.stopping.done() and index < MAX_UPLOADS_DURING:
            await upload_while(index)
            index += 1
        await outage.down()
        unfinished = [j for j, s in (await bus.states(during)).items() if s not in FINAL_STATES]
        jobs_while_down = len(await gateway.all_jobs())
        for extra in range(3):  # with the broker down: 503, quickly, and nothing recorded
            await upload_while(index + extra)
        assert len(await gateway.all_jobs()) == jobs_while_down

    # Everyone reconnects by themselves: nobody is restarted.
    reconnected = {
        name: daemons[name].wait_for("broker.reconnected", since=marks[name], timeout=90).at
        for name in PIPELINE_DAEMONS
    }
    await asyncio.wait_for(gateway_back.wait(), 90)
    reconnected["gateway"] = gateway_back_at[0]
    for name, at in sorted(reconnected.items()):
        print(
            f"reconnect {name}: {at - outage.restored_at:.2f} s after the broker was back "
            f"({at - outage.stopped_at:.2f} s after it stopped)"
        )
    print(f"uploads refused with 503 after {', '.join(f'{t:.2f}' for t in refusals)} s")
    print(f"{len(during)} uploads accepted while stopping, {len(unfinished)} unfinished at stop")
    assert len(refusals) >= 3
    assert all(daemons[name].process.poll() is None for name in PIPELINE_DAEMONS)

    # The consumers are back on their queues, and new uploads flow.
    for queue in ("worker.jobs", "parser.requests", "audit.events", "gateway.events"):
        async with asyncio.timeout(30):
            name = bus.publisher.topology.queue(queue)
            while (await queue_counts(bus.publisher.channel, name))[1] == 0:
                await asyncio.sleep(0.1)
    after = []
    async with asyncio.timeout(60):
        while not after:  # the gateway's own channels may lag its connection by a moment
            response = await gateway.upload([("after.txt", "text/plain", text_document(200))])
            if response.status == 202:
                after.append(str((await response.json())["jobs"][0]["job_id"]))
            else:
                await error_body(response, 503, "unavailable")
                await asyncio.sleep(0.2)
    after += [await _upload(gateway, 201 + i) for i in range(5)]

    jobs = before + during + after
    states = await bus.wait_final(jobs, timeout=120)
    assert Counter(states.values()) == {"done": len(jobs)}
    assert {job.job_id for job in await gateway.all_jobs()} == set(jobs)
    assert bus.result_counts() == dict.fromkeys(jobs, 1)
    history = bus.history()
    assert {job: tuple(history.get(job, ())) for job in jobs} == dict.fromkeys(
        jobs, ("queued", "processing", "done")
    )
    records = await wait_audit(
        data_dir,
        lambda rs: all(audit_types_by_job(rs).get(job, Counter())["job.completed"] for job in jobs),
    )
    by_job = audit_types_by_job(records)
    assert {job: by_job[job]["job.completed"] for job in jobs} == dict.fromkeys(jobs, 1)
    # An upload answered 503 whose message reached the broker all the same (its confirm was
    # lost with the connection) is dead-lettered by the worker, never turned into a job.
    channel, topology = bus.publisher.channel, bus.publisher.topology
    withdrawn = await drain(channel, topology.queue("worker.jobs.dlq"))
    print(f"{len(withdrawn)} refused upload(s) reached the broker and were dead-lettered")
    assert {m.headers[REJECT_REASON_HEADER] for m in withdrawn} <= {"job_unknown"}
    assert not {m.correlation_id for m in withdrawn} & set(jobs)
    rejected = [r for r in records if r.event.type == "upload.rejected"]
    assert [r.event.reason for r in rejected] in ([], ["broker_unavailable"])
