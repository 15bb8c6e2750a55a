"""``gateway.events``: the worker's sealed events wake live streams; contradictions are refused."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime

import pytest
from gateway_testing import Gateway

from broker import REJECT_REASON_HEADER, Publisher, Sealer
from gateway import HUB_KEY, RUNTIME_KEY, Principal
from keys import KeyRing
from schemas import JobCompleted, JobProgress

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def _watcher() -> Principal:
    return Principal("alice", "sealflow-cli", ("jobs:read",), ("user",), "0" * 32, 2**31)


def _worker_publisher(gateway: Gateway) -> Publisher:
    runtime = gateway.app[RUNTIME_KEY]
    assert runtime.publish_channel is not None
    sealer = Sealer(KeyRing.load(gateway.settings.keys_dir, "worker").signing_key())
    return Publisher(runtime.publish_channel, runtime.topology, sealer)


async def test_a_worker_event_wakes_the_jobs_subscribers(gateway: Gateway) -> None:
    job_id = secrets.token_hex(16)
    hub = gateway.app[HUB_KEY]
    with hub.stream(_watcher()) as stream:
        hub.follow(stream, job_id)
        await _worker_publisher(gateway).send(
            JobProgress(job_id=job_id, owner="alice", state="processing", at=datetime.now(UTC)),
            typ="job.progress",
            aud="gateway",
            sub="alice",
            job=job_id,
        )
        assert await stream.wait(30)


async def test_an_event_contradicting_its_envelope_is_dead_lettered(gateway: Gateway) -> None:
    job_id = secrets.token_hex(16)
    hub = gateway.app[HUB_KEY]
    with hub.stream(_watcher()) as stream:
        hub.follow(stream, job_id)
        await _worker_publisher(gateway).send(
            JobCompleted(
                job_id=job_id,
                owner="mallory",
                finished_at=datetime.now(UTC),
                chars=1,
                chunks=1,
                parser="text",
            ),
            typ="job.completed",
            aud="gateway",
            sub="alice",
            job=job_id,
        )
        runtime = gateway.app[RUNTIME_KEY]
        assert runtime.publish_channel is not None
        dlq = await runtime.publish_channel.declare_queue(
            runtime.topology.queue("gateway.events.dlq"), passive=True
        )
        async with asyncio.timeout(30):
            while (message := await dlq.get(fail=False, no_ack=True)) is None:
                await asyncio.sleep(0.05)
        assert (message.headers or {})[REJECT_REASON_HEADER] == "owner_mismatch"
        assert not await stream.wait(0.01)
