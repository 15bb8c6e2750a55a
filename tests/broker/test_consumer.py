"""The broker layer against a real RabbitMQ: topology, confirms, retries, dead letters, expiry."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from audit_testing import RecordingAuditSink
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
from schemas import AuditEvent, Revocation

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@dataclass
class Rig:
    channel: Any
    topology: Topology
    publisher: Publisher
    opener: Opener
    audit: RecordingAuditSink
    settings: BrokerSettings
    own_publisher: Publisher
    """The consuming worker's own publisher (retries and dead letters)."""

    def consumer(self, handler: Any) -> Consumer:
        return Consumer(
            queue="worker.jobs",
            channel=self.channel,
            topology=self.topology,
            opener=self.opener,
            publisher=self.own_publisher,
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
    worker = Sealer(KeyRing.load(keys_dir, "worker").signing_key())
    opener = Opener(
        "worker", TrustStoreFile(keys_dir / "trust.json", min_interval=0), spent=SpentIds(1000)
    )
    try:
        yield Rig(
            channel,
            topology,
            Publisher(channel, topology, sealer),
            opener,
            RecordingAuditSink(),
            settings,
            Publisher(channel, topology, worker),
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


async def _wait_for_messages(rig: Rig, queue: str, count: int, timeout: float = 2) -> None:
    async with asyncio.timeout(timeout):
        while (await queue_counts(rig.channel, queue))[0] != count:
            await asyncio.sleep(0.02)


async def test_a_copy_sent_while_a_retry_waits_is_refused_as_a_replay(rig: Rig) -> None:
    """Attack (issue 11.5): a transient failure used to release the jti, so a byte-for-byte
    copy published while the retry waited was handled as if it were the retry."""
    rig.settings = rig.settings.model_copy(update={"retry_base_delay": 3.0, "retry_max_delay": 3.0})
    attempts: list[int] = []
    failed, done = asyncio.Event(), asyncio.Event()

    async def handler(opened: Opened[Any], delivery: Delivery) -> None:
        attempts.append(delivery.attempt)
        if len(attempts) == 1:
            failed.set()
            raise ConnectionError("database briefly away")
        done.set()

    consumer = rig.consumer(handler)
    await consumer.start()
    message = job_message()
    sealed = await rig.publisher.send(message, typ="job.submitted", aud="worker", sub="alice")
    await asyncio.wait_for(failed.wait(), 10)
    await _wait_for_messages(rig, rig.topology.retry_queue("worker.jobs"), 1)
    await rig.publisher.publish(sealed)  # the copy, while the genuine retry waits
    dead = await rig.dead_letter()
    await asyncio.wait_for(done.wait(), 15)
    await consumer.stop()
    assert dead.headers[REJECT_REASON_HEADER] == "replay"
    assert attempts == [1, 2]


async def test_a_copy_of_an_exhausted_message_is_refused_as_a_replay(rig: Rig) -> None:
    """Attack (issue 11.5): a message dead-lettered as ``retries_exhausted`` was never marked
    spent, so each copy of it was handled again, ``max_attempts`` times more."""
    calls = 0

    async def handler(opened: Opened[Any], delivery: Delivery) -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError("always down")

    consumer = rig.consumer(handler)
    await consumer.start()
    message = job_message()
    sealed = await rig.publisher.send(message, typ="job.submitted", aud="worker", sub="alice")
    first = await rig.dead_letter()
    assert first.headers[REJECT_REASON_HEADER] == "retries_exhausted"
    await rig.publisher.publish(sealed)
    second = await rig.dead_letter()
    await consumer.stop()
    assert second.headers[REJECT_REASON_HEADER] == "replay"
    assert calls == 3


async def test_a_forged_attempt_header_does_not_cut_the_retries_short(rig: Rig) -> None:
    """Attack (issue 11.5): the retry count rode in an unsigned header that any publisher sets;
    a genuine message sent with ``x-sealflow-attempt: 3`` was dead-lettered on its first fault."""
    attempts: list[int] = []

    async def handler(opened: Opened[Any], delivery: Delivery) -> None:
        attempts.append(delivery.attempt)
        raise ConnectionError("always down")

    consumer = rig.consumer(handler)
    await consumer.start()
    sealed = rig.publisher.sealer.seal(
        job_message(), typ="job.submitted", aud="worker", sub="alice"
    )
    amqp = rig.publisher.message_for(sealed)
    amqp.headers[ATTEMPT_HEADER] = rig.settings.max_attempts
    await rig.publisher.publish_raw(amqp, routing_key=rig.topology.queue("worker.jobs"))
    dead = await rig.dead_letter()
    await consumer.stop()
    assert dead.headers[REJECT_REASON_HEADER] == "retries_exhausted"
    assert attempts == [1, 2, 3]


async def test_a_revocation_between_delivery_and_handler_refuses_the_message(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11.6: a message opened before its subject was revoked is re-checked when its
    handler starts; the revocation lands right after ``open`` here, as it would for a message
    that waited prefetched."""
    revocations = RevocationList()
    rig.opener.revocations = revocations
    opened_once = rig.opener.open

    def open_then_revoke(*args: Any, **kwargs: Any) -> Opened[Any]:
        opened = opened_once(*args, **kwargs)
        revocations.add(
            Revocation(
                revocation_id=secrets.token_hex(16),
                kind="sub",
                value="alice",
                reason="stolen laptop",
                issued_at=datetime.now(UTC),
            )
        )
        return opened

    monkeypatch.setattr(rig.opener, "open", open_then_revoke)
    calls = 0

    async def handler(opened: Opened[Any], delivery: Delivery) -> None:
        nonlocal calls
        calls += 1

    consumer = rig.consumer(handler)
    await consumer.start()
    await _send(rig)
    dead = await rig.dead_letter()
    await consumer.stop()
    assert calls == 0
    assert dead.headers[REJECT_REASON_HEADER] == "revoked"
    [event] = rig.audit.events
    assert (event.type, event.reason, event.subject) == ("envelope.rejected", "revoked", "alice")


async def test_a_handler_that_waits_revalidates_before_it_acts(rig: Rig) -> None:
    """Issue 11.6: a handler that waits (for a parse slot, say) calls ``revalidate()`` when it
    starts work; a revocation that arrived meanwhile refuses the message there."""
    revocations = RevocationList()
    rig.opener.revocations = revocations
    waiting, go = asyncio.Event(), asyncio.Event()
    acted = False

    async def handler(opened: Opened[Any], delivery: Delivery) -> None:
        nonlocal acted
        waiting.set()
        await go.wait()  # the slot it waited for comes free
        delivery.revalidate()
        acted = True

    consumer = rig.consumer(handler)
    await consumer.start()
    await _send(rig)
    await asyncio.wait_for(waiting.wait(), 10)
    revocations.add(
        Revocation(
            revocation_id=secrets.token_hex(16),
            kind="sub",
            value="alice",
            reason="account disabled",
            issued_at=datetime.now(UTC),
        )
    )
    go.set()
    dead = await rig.dead_letter()
    await consumer.stop()
    assert not acted
    assert dead.headers[REJECT_REASON_HEADER] == "revoked"


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
        audit=RecordingAuditSink(),
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
        audit=RecordingAuditSink(),
    )
    await subscriber.start()
    await connection.close()
    await asyncio.wait_for(subscriber.stop(), 30)
