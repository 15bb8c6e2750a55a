"""A broker restart: the robust connection reconnects, re-declares and resumes consuming."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sealflow_testing import job_message

from broker import (
    BrokerSettings,
    Consumer,
    Delivery,
    Opened,
    Opener,
    Publisher,
    PublishFailed,
    Sealer,
    SpentIds,
    Topology,
    connect,
    open_channel,
)
from keys import KeyRing, TrustStoreFile
from schemas import AuditEvent

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


class _Audit:
    async def emit(self, event: AuditEvent) -> None:
        raise AssertionError(f"nothing should be audited here: {event}")


def _rabbitmqctl(*args: str) -> None:
    ctl = shutil.which("rabbitmqctl")
    assert ctl is not None
    subprocess.run([ctl, *args], check=True, capture_output=True, timeout=120)


async def test_consumer_and_publisher_survive_a_broker_restart(
    amqp_url: str, namespace: str, keys_dir: Path, cleanup_namespace: None
) -> None:
    if urlsplit(amqp_url).hostname not in {"127.0.0.1", "localhost"} or not shutil.which(
        "rabbitmqctl"
    ):
        pytest.skip(
            "restarts only a local RabbitMQ it controls with rabbitmqctl (issue 6 adds containers)"
        )
    settings = BrokerSettings(amqp_url=amqp_url, namespace=namespace, keys_dir=keys_dir)
    connection = await connect(amqp_url)
    publish_channel = await open_channel(connection)
    consume_channel = await open_channel(connection, prefetch=4)
    topology = Topology(namespace)
    await topology.declare(publish_channel)
    publisher = Publisher(
        publish_channel, topology, Sealer(KeyRing.load(keys_dir, "gateway").signing_key())
    )
    trust = TrustStoreFile(keys_dir / "trust.json", min_interval=0)
    seen: list[str] = []
    arrived = asyncio.Event()

    async def handler(opened: Opened[Any], delivery: Delivery) -> None:
        seen.append(opened.message.job_id)
        arrived.set()

    consumer = Consumer(
        queue="worker.jobs",
        channel=consume_channel,
        topology=topology,
        opener=Opener("worker", trust, spent=SpentIds(100)),
        publisher=publisher,
        audit=_Audit(),
        handlers={"job.submitted": handler},
        settings=settings,
    )
    await consumer.start()
    try:
        before = job_message()
        await publisher.send(before, typ="job.submitted", aud="worker", sub="alice")
        await asyncio.wait_for(arrived.wait(), 10)

        _rabbitmqctl("stop_app")
        try:
            after = job_message()
            with pytest.raises(PublishFailed):
                await publisher.send(after, typ="job.submitted", aud="worker", sub="alice")
        finally:
            _rabbitmqctl("start_app")
            _rabbitmqctl("await_startup")

        arrived.clear()
        async with asyncio.timeout(60):
            while True:  # publishing fails until the robust connection is back
                try:
                    await publisher.send(after, typ="job.submitted", aud="worker", sub="alice")
                    break
                except PublishFailed:
                    await asyncio.sleep(0.5)
        await asyncio.wait_for(arrived.wait(), 60)
        assert seen == [before.job_id, after.job_id]
    finally:
        await consumer.stop(grace=5)
        await connection.close()
