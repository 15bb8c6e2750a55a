"""The broker layer against a real RabbitMQ: topology, confirms, retries, dead letters, expiry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from sealflow_testing import job_message, queue_counts

from broker import (
    ATTEMPT_HEADER,
    REJECT_REASON_HEADER,
    BrokerSettings,
    Consumer,
    ControlSubscriber,
    Delivery,
    Opened,
    Opener,
    PermanentFailure,
    Publisher,
    PublishFailed,
    RevocationList,
    Sealer,
    SpentIds,
    Topology,
    connect,
    open_channel,
)
from keys import KeyRing, TrustStoreFile
from schemas import AuditEvent

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


class _Audit:
    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    async def emit(self, event: AuditEvent) -> None:
        self.events.append(event)


@dataclass
class Rig:
    channel: Any
    topology: Topology
    publisher: Publisher
    opener: Opener
    audit: _Audit
    settings: BrokerSettings

    def consumer(self, handler: Any) -> Consumer:
        return Consumer(
            queue="worker.jobs",
            channel=self.channel,
            topology=self.topology,
            opener=self.opener,
            publisher=self.publisher,
            audit=self.audit,
            handlers={"job.submitted": handler},
            settings=self.settings,
        )

    async def dead_letter(self, timeout: float = 20) -> Any:
        dlq = await self.channel.get_queue(self.topology.queue("worker.jobs.dlq"), ensure=False)
        async with asyncio.timeout(timeout):
            while (message := await dlq.get(fail=False, no_ack=True)) is None:
                await asyncio.sleep(0.05)
        return message


@pytest.fixture
async def rig(
    amqp_url: str, namespace: str, keys_dir: Path, cleanup_namespace: None
) -> AsyncIterator[Rig]:
    settings = BrokerSettings(
        amqp_url=amqp_url,
        namespace=namespace,
        keys_dir=keys_dir,
        max_attempts=3,
        retry_base_delay=0.05,
        retry_max_delay=0.2,
        shutdown_grace=5,
    )
    connection = await connect(amqp_url)
    channel = await open_channel(connection, prefetch=8)
    topology = Topology(namespace)
    await topology.declare(channel)
    sealer = Sealer(KeyRing.load(keys_dir, "gateway").signing_key())
    opener = Opener(
        "worker", TrustStoreFile(keys_dir / "trust.json", min_interval=0), spent=SpentIds(1000)
    )
    try:
        yield Rig(
            channel, topology, Publisher(channel, topology, sealer), opener, _Audit(), settings
        )
    finally:
        await connection.close()


async def _send(rig: Rig) -> str:
    message = job_message()
    sealed = await rig.publisher.send(
        message, typ="job.submitted", aud="worker", sub="alice", job=message.job_id
    )
    return sealed.jti


async def test_topology_declares_namespaced_quorum_queues_with_dlqs(rig: Rig) -> None:
    for name in rig.topology.all_queue_names():
        assert name.startswith(rig.topology.namespace + ".")
        messages, _ = await queue_counts(rig.channel, name)
        assert messages == 0


async def test_handled_message_is_acked_once(rig: Rig) -> None:
    seen: list[str] = []
    done = asyncio.Event()

    async def handler(opened: Opened[Any], delivery: Delivery) -> None:
        seen.append(opened.claims.jti)
        done.set()

    consumer = rig.consumer(handler)
    await consumer.start()
    jti = await _send(rig)
    await asyncio.wait_for(done.wait(), 10)
    await consumer.stop()
    assert seen == [jti]
    messages, _ = await queue_counts(rig.channel, rig.topology.queue("worker.jobs"))
    assert messages == 0


async def test_a_rejection_is_acked_only_once_it_is_audited(rig: Rig) -> None:
    """The audit publish fails once: the message comes back, is refused again, and the two
    refusals are one decision (same event id), recorded once the audit publish goes through."""
    failures = 1
    events: list[AuditEvent] = []

    class FlakyAudit:
        async def emit(self, event: AuditEvent) -> None:
            nonlocal failures
            if failures:
                failures -= 1
                raise PublishFailed("audit exchange unreachable (test)")
            events.append(event)

    rig.audit = FlakyAudit()  # type: ignore[assignment]

    async def handler(opened: Opened[Any], delivery: Delivery) -> None:
        raise AssertionError("a rejected envelope must never be handled")

    consumer = rig.consumer(handler)
    await consumer.start()
    sealed = rig.publisher.sealer.seal(
        job_message(), typ="job.submitted", aud="worker", sub="alice"
    )
    amqp = rig.publisher.message_for(sealed)
    amqp.message_id = "1" * 32
    await rig.publisher.publish_raw(amqp, routing_key=rig.topology.queue("worker.jobs"))
    async with asyncio.timeout(20):
        while not events:
            await asyncio.sleep(0.05)
    await consumer.stop()
    [event] = events
    assert (event.type, event.reason) == ("envelope.rejected", "jti_mismatch")
    messages, _ = await queue_counts(rig.channel, rig.topology.queue("worker.jobs"))
    assert messages == 0
    dead = await rig.dead_letter()
    assert dead.headers[REJECT_REASON_HEADER] == "jti_mismatch"


async def test_transient_failure_is_retried_with_backoff_then_succeeds(rig: Rig) -> None:
    attempts: list[int] = []
    done = asyncio.Event()

    async def handler(opened: Opened[Any], delivery: Delivery) -> None:
        attempts.append(delivery.attempt)
        if delivery.attempt < 3:
            raise ConnectionError("database briefly away")
        done.set()

    consumer = rig.consumer(handler)
    await consumer.start()
    await _send(rig)
    await asyncio.wait_for(done.wait(), 15)
    await consumer.stop()
    assert attempts == [1, 2, 3]


async def test_exhausted_retries_are_dead_lettered_with_the_reason(rig: Rig) -> None:
    async def handler(opened: Opened[Any], delivery: Delivery) -> None:
        raise ConnectionError("always down")

    consumer = rig.consumer(handler)
    await consumer.start()
    jti = await _send(rig)
    dead = await rig.dead_letter()
    await consumer.stop()
    assert dead.message_id == jti
    assert dead.headers[REJECT_REASON_HEADER] == "retries_exhausted"
    assert dead.headers[ATTEMPT_HEADER] == 3
    assert [e.type for e in rig.audit.events] == ["message.dead_lettered"]


async def test_permanent_failure_is_dead_lettered_at_once(rig: Rig) -> None:
    calls = 0

    async def handler(opened: Opened[Any], delivery: Delivery) -> None:
        nonlocal calls
        calls += 1
        raise PermanentFailure("cannot ever work")

    consumer = rig.consumer(handler)
    await consumer.start()
    await _send(rig)
    dead = await rig.dead_letter()
    await consumer.stop()
    assert calls == 1
    assert dead.headers[REJECT_REASON_HEADER] == "permanent_failure"


async def test_rejected_envelope_is_dead_lettered_audited_and_never_handled(rig: Rig) -> None:
    calls = 0

    async def handler(opened: Opened[Any], delivery: Delivery) -> None:
        nonlocal calls
        calls += 1

    consumer = rig.consumer(handler)
    await consumer.start()
    message = job_message()
    sealed = rig.publisher.sealer.seal(message, typ="job.submitted", aud="worker", sub="alice")
    amqp = rig.publisher.message_for(sealed)
    amqp.message_id = "0" * 32
    await rig.publisher.publish_raw(amqp, routing_key=rig.topology.queue("worker.jobs"))
    dead = await rig.dead_letter()
    await consumer.stop()
    assert calls == 0
    assert dead.headers[REJECT_REASON_HEADER] == "jti_mismatch"
    [event] = rig.audit.events
    assert (event.type, event.outcome, event.reason) == (
        "envelope.rejected",
        "rejected",
        "jti_mismatch",
    )


async def test_message_that_waits_past_its_expiration_is_dead_lettered_by_the_broker(
    rig: Rig,
) -> None:
    message = job_message()
    sealed = rig.publisher.sealer.seal(
        message, typ="job.submitted", aud="worker", sub="alice", lifetime=1
    )
    await rig.publisher.publish(sealed)
    dead = await rig.dead_letter(timeout=30)
    assert dead.message_id == sealed.jti
    assert dead.headers["x-death"][0]["reason"] == "expired"


async def test_unroutable_publish_fails_loudly(rig: Rig) -> None:
    stray = aio_pika.Message(body=b"{}", message_id="x")
    with pytest.raises(PublishFailed):
        await rig.publisher.publish_raw(stray, routing_key=rig.topology.queue("no.such.queue"))


async def test_stop_waits_for_the_in_flight_handler(rig: Rig) -> None:
    started, release, finished = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def handler(opened: Opened[Any], delivery: Delivery) -> None:
        started.set()
        await release.wait()
        finished.set()

    consumer = rig.consumer(handler)
    await consumer.start()
    await _send(rig)
    await asyncio.wait_for(started.wait(), 10)
    stopping = asyncio.create_task(consumer.stop(grace=10))
    await asyncio.sleep(0)
    assert not stopping.done()
    release.set()
    await asyncio.wait_for(stopping, 10)
    assert finished.is_set()
    messages, _ = await queue_counts(rig.channel, rig.topology.queue("worker.jobs"))
    assert messages == 0
    assert datetime.now(UTC)


async def test_stop_returns_when_the_connection_is_already_gone(
    amqp_url: str, namespace: str, keys_dir: Path, cleanup_namespace: None
) -> None:
    """A SIGTERM while the broker is away must still end: cancelling is bounded in time."""
    settings = BrokerSettings(amqp_url=amqp_url, namespace=namespace, keys_dir=keys_dir)
    connection = await connect(amqp_url)
    channel = await open_channel(connection, prefetch=8)
    topology = Topology(namespace)
    await topology.declare(channel)
    consumer = Consumer(
        queue="worker.jobs",
        channel=channel,
        topology=topology,
        opener=Opener("worker", TrustStoreFile(keys_dir / "trust.json"), spent=SpentIds(10)),
        publisher=Publisher(
            channel, topology, Sealer(KeyRing.load(keys_dir, "worker").signing_key())
        ),
        audit=_Audit(),
        handlers={},
        settings=settings,
    )
    await consumer.start()
    await connection.close()
    await asyncio.wait_for(consumer.stop(grace=1), 30)
    assert not consumer.consuming


async def test_control_subscriber_stop_returns_when_the_connection_is_already_gone(
    amqp_url: str, namespace: str, keys_dir: Path, cleanup_namespace: None
) -> None:
    connection = await connect(amqp_url)
    channel = await open_channel(connection, prefetch=8)
    topology = Topology(namespace)
    await topology.declare(channel)
    trust = TrustStoreFile(keys_dir / "trust.json")
    subscriber = ControlSubscriber(
        channel=channel,
        topology=topology,
        opener=Opener("worker", trust, spent=SpentIds(10)),
        revocations=RevocationList(),
        trust=trust,
        audit=_Audit(),
    )
    await subscriber.start()
    await connection.close()
    await asyncio.wait_for(subscriber.stop(), 30)
