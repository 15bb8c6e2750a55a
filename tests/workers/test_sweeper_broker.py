"""The sweeper on a real broker: a parse request expires in the queue, and the job still ends.

The envelope lifetime is cut to 5 s and the parser is not running, so the worker's first
``parse.requested`` is dead-lettered by the broker as ``expired``. The sweeper then re-requests
it: with a parser started meanwhile the job reaches ``done``; with none it ends ``failed`` with
``parse_timeout`` and the gateway is told.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aio_pika
import pytest
from daemon_testing import RunningDaemon, start_daemon
from sealflow_testing import queue_counts

from broker import BrokerSettings, Publisher, Sealer, Topology
from keys import KeyRing
from parser.daemon import ParserSettings
from parser.daemon import serve as serve_parser
from schemas import JobSubmitted
from store import JobState, JobStore, NewJob, open_store
from workers import WorkerSettings
from workers import serve as serve_worker

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

_DATA = b"a harbour whose parser came late\n"


@pytest.fixture
def settings(amqp_url: str, namespace: str, keys_dir: Path, tmp_path: Path) -> BrokerSettings:
    """Every daemon's broker settings, with the shortest envelope lifetime allowed."""
    return BrokerSettings(
        amqp_url=amqp_url,
        namespace=namespace,
        data_dir=tmp_path / "data",
        keys_dir=keys_dir,
        envelope_lifetime=5,
        retry_base_delay=0.05,
        max_attempts=3,
        shutdown_grace=10,
    )


@pytest.fixture
async def channel(
    amqp_url: str, namespace: str, cleanup_namespace: None
) -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    """A channel of the test's own, to publish as the gateway and to count queues."""
    connection = await aio_pika.connect_robust(amqp_url)
    try:
        opened = await connection.channel(publisher_confirms=True)
        # Declared up front (as every daemon does on start), so counting a queue never races it.
        await Topology(namespace).declare(opened)
        yield opened
    finally:
        await connection.close()


@pytest.fixture
async def store(settings: BrokerSettings) -> AsyncIterator[JobStore]:
    """The job store the worker and the parser use (the embedded one, in the data directory)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    jobs = await open_store(None, settings.data_dir)
    try:
        yield jobs
    finally:
        await jobs.close()


async def _worker(
    settings: BrokerSettings, channel: aio_pika.abc.AbstractChannel, max_rerequests: int
) -> RunningDaemon:
    worker_settings = WorkerSettings(
        health_port=0, stuck_after=6, sweep_interval=0.2, max_rerequests=max_rerequests
    )
    return await start_daemon(
        lambda stop: serve_worker(settings, worker_settings, stop=stop),
        channel,
        Topology(settings.namespace).queue("worker.jobs"),
    )


async def _submit(
    settings: BrokerSettings, channel: aio_pika.abc.AbstractChannel, store: JobStore
) -> str:
    """Record a job with its blob and publish ``job.submitted`` sealed by the gateway."""
    job_id = secrets.token_hex(16)
    sha = hashlib.sha256(_DATA).hexdigest()
    await store.create_with_blob(
        NewJob(
            job_id=job_id,
            owner="alice",
            filename="late.txt",
            content_type="text/plain",
            size=len(_DATA),
            blob_sha256=sha,
            trace=secrets.token_hex(16),
        ),
        _DATA,
    )
    sealer = Sealer(KeyRing.load(settings.keys_dir, "gateway").signing_key(), lifetime=5)
    publisher = Publisher(channel, Topology(settings.namespace), sealer)
    await publisher.send(
        JobSubmitted(
            job_id=job_id,
            owner="alice",
            filename="late.txt",
            content_type="text/plain",
            size=len(_DATA),
            blob_sha256=sha,
            submitted_at=datetime.now(UTC),
        ),
        aud="worker",
        sub="alice",
        job=job_id,
        act={"sub": "gateway"},
    )
    return job_id


async def _expired_request(settings: BrokerSettings, channel: aio_pika.abc.AbstractChannel) -> None:
    """Wait (bounded) until the broker dead-letters the unanswered parse request."""
    dlq = Topology(settings.namespace).queue("parser.requests.dlq")
    async with asyncio.timeout(30):
        while (await queue_counts(channel, dlq))[0] == 0:
            await asyncio.sleep(0.1)


async def _final_state(store: JobStore, job_id: str, timeout: float = 60) -> JobState:
    async with asyncio.timeout(timeout):
        while True:
            job = await store.get(job_id)
            if job is not None and job.state in {"done", "failed"}:
                return job.state
            await asyncio.sleep(0.1)


async def test_an_expired_parse_request_is_re_requested_and_the_job_is_done(
    settings: BrokerSettings, channel: aio_pika.abc.AbstractChannel, store: JobStore
) -> None:
    """No parser until the request expired; the sweeper's fresh request reaches the parser."""
    worker = await _worker(settings, channel, max_rerequests=2)
    try:
        job_id = await _submit(settings, channel, store)
        await _expired_request(settings, channel)
        parser = await start_daemon(
            lambda stop: serve_parser(
                settings, ParserSettings(health_port=0, timeout_seconds=15), stop=stop
            ),
            channel,
            Topology(settings.namespace).queue("parser.requests"),
        )
        try:
            assert await _final_state(store, job_id) == "done"
        finally:
            await parser.close()
    finally:
        await worker.close()
    result = await store.get_result(job_id)
    assert result is not None
    assert "harbour" in result.text


async def test_with_no_parser_the_job_fails_with_parse_timeout(
    settings: BrokerSettings, channel: aio_pika.abc.AbstractChannel, store: JobStore
) -> None:
    """One re-request expires too; then the job fails and the gateway gets ``job.failed``."""
    gateway_events = Topology(settings.namespace).queue("gateway.events")
    worker = await _worker(settings, channel, max_rerequests=1)
    try:
        job_id = await _submit(settings, channel, store)
        assert await _final_state(store, job_id) == "failed"
    finally:
        await worker.close()
    job = await store.get(job_id)
    assert job is not None
    assert job.error_reason == "parse_timeout"
    # job.failed waits for the gateway (or, past its 5 s life, in the gateway's DLQ).
    types = []
    for name in (gateway_events, gateway_events + ".dlq"):
        queue = await channel.get_queue(name, ensure=False)
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            types.append(message.type)
    assert "job.failed" in types
