"""Browsing and taking dead letters on a real RabbitMQ: nothing is consumed unless acked."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from audit_testing import RecordingAuditSink
from cryptography.hazmat.primitives.asymmetric import ec
from sealflow_testing import job_message, queue_counts

from broker import (
    LETTER_ID_HEADER,
    REJECT_REASON_HEADER,
    BrokerSettings,
    Consumer,
    DeadLetterQueues,
    Opener,
    PermanentFailure,
    Publisher,
    Sealer,
    SpentIds,
    Topology,
    connect,
    open_channel,
    unverified_claims,
)
from keys import KeyRing, SigningKey, TrustStoreFile

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@dataclass
class Rig:
    connection: Any
    channel: Any
    topology: Topology
    publisher: Publisher
    sealer: Sealer
    keys_dir: Path
    dead: DeadLetterQueues

    async def dead_letter(self, queue: str = "worker.jobs", reason: str = "no_handler") -> str:
        """Put a dead letter in ``queue``'s DLQ as the consumer does; its letter id."""
        message = job_message()
        sealed = self.sealer.seal(
            message, typ="job.submitted", aud="worker", sub="alice", job=message.job_id
        )
        amqp = self.publisher.message_for(sealed)
        amqp.headers[REJECT_REASON_HEADER] = reason
        amqp.headers["x-sealflow-reject-detail"] = "test"
        amqp.headers["x-sealflow-rejected-by"] = "worker"
        amqp.headers[LETTER_ID_HEADER] = letter_id = secrets.token_hex(16)
        amqp.expiration = None
        await self.publisher.publish_raw(amqp, routing_key=self.topology.queue(f"{queue}.dlq"))
        return letter_id

    async def count(self, queue: str = "worker.jobs") -> int:
        return (await queue_counts(self.channel, self.topology.queue(f"{queue}.dlq")))[0]

    async def wait_count(self, expected: int, queue: str = "worker.jobs") -> None:
        async with asyncio.timeout(20):
            while await self.count(queue) != expected:
                await asyncio.sleep(0.05)


@pytest.fixture
async def rig(
    amqp_url: str, namespace: str, keys_dir: Path, cleanup_namespace: None
) -> AsyncIterator[Rig]:
    connection = await connect(amqp_url)
    channel = await open_channel(connection)
    topology = Topology(namespace)
    await topology.declare(channel)
    sealer = Sealer(KeyRing.load(keys_dir, "gateway").signing_key())
    dead = DeadLetterQueues(connection, topology, timeout=10)
    try:
        yield Rig(
            connection,
            channel,
            topology,
            Publisher(channel, topology, sealer),
            sealer,
            keys_dir,
            dead,
        )
    finally:
        await dead.close()
        await connection.close()


async def test_browsing_lists_dead_letters_in_order_and_consumes_none(rig: Rig) -> None:
    ids = [await rig.dead_letter(reason=f"reason_{n}") for n in range(3)]
    other = await rig.dead_letter("parser.requests", reason="schema_invalid")
    await rig.wait_count(3)
    for _ in range(3):
        page = await rig.dead.browse()
        assert page.more is False
        letters = page.letters
        assert [letter.id for letter in letters] == [*ids, other]
    await rig.wait_count(3)  # the requeues are asynchronous, seen from another channel
    await rig.wait_count(1, "parser.requests")
    first = letters[0]
    assert (first.queue, first.type, first.reason, first.rejected_by) == (
        "worker.jobs",
        "job.submitted",
        "reason_0",
        "worker",
    )
    assert first.size == len(first.body) > 0
    assert first.job is not None
    assert len(first.job) == 32
    assert first.deliveries >= 2  # each browse is a delivery (the documented caveat)
    claims = unverified_claims(first.envelope)
    assert (claims["iss"], claims["sub"], claims["jti"]) == ("gateway", "alice", first.message_id)


async def test_browsing_is_bounded_by_the_limit_and_filters_by_queue(rig: Rig) -> None:
    ids = [await rig.dead_letter() for _ in range(4)]
    parser_id = await rig.dead_letter("parser.requests")
    await rig.wait_count(4)
    page = await rig.dead.browse(limit=2)
    assert ([letter.id for letter in page.letters], page.more) == (ids[:2], True)
    page = await rig.dead.browse(limit=5)  # four here and one in the parser's DLQ: exactly all
    assert (len(page.letters), page.more) == (5, False)
    page = await rig.dead.browse(queue="parser.requests")
    assert [letter.id for letter in page.letters] == [parser_id]
    await rig.wait_count(4)
    with pytest.raises(ValueError, match="limit"):
        await rig.dead.browse(limit=0)
    with pytest.raises(ValueError, match="unknown queue"):
        await rig.dead.browse(queue="nope")


async def test_a_message_the_broker_expired_shows_the_brokers_reason(rig: Rig) -> None:
    message = job_message()
    sealed = rig.sealer.seal(
        message, typ="job.submitted", aud="worker", sub="alice", job=message.job_id, lifetime=1
    )
    amqp = rig.publisher.message_for(sealed)
    amqp.expiration = 0.001  # nobody consumes worker.jobs here: it expires into the DLQ
    await rig.publisher.publish_raw(
        amqp, routing_key="job.submitted", exchange=rig.topology.exchange("jobs")
    )
    await rig.wait_count(1)
    [letter] = (await rig.dead.browse()).letters
    assert (letter.message_id, letter.reason, letter.deaths) == (sealed.jti, "expired", 1)
    assert letter.id != sealed.jti  # its own id, derived from its death and content


async def test_take_holds_one_letter_and_returns_it_unless_acked(rig: Rig) -> None:
    ids = [await rig.dead_letter() for _ in range(3)]
    await rig.wait_count(3)
    async with rig.dead.take(ids[1]) as taken:
        assert taken is not None
        assert taken.letter.id == ids[1]
        await rig.wait_count(2)  # the others are back at once; this one is held
    await rig.wait_count(3)
    # Returned, not lost (a requeued message may come back in another place: AMQP's caveat).
    assert sorted(letter.id for letter in (await rig.dead.browse()).letters) == sorted(ids)

    async with rig.dead.take(ids[1]) as taken:
        assert taken is not None
        await taken.ack()
    await rig.wait_count(2)
    assert sorted(letter.id for letter in (await rig.dead.browse()).letters) == sorted(
        [ids[0], ids[2]]
    )

    async with rig.dead.take(secrets.token_hex(16)) as missing:
        assert missing is None
    await rig.wait_count(2)


async def test_take_returns_the_letter_when_the_caller_fails(rig: Rig) -> None:
    message_id = await rig.dead_letter()
    await rig.wait_count(1)
    seen: list[object] = []

    async def replay_that_fails() -> None:
        async with rig.dead.take(message_id) as taken:
            seen.append(taken)
            raise RuntimeError("publish failed")

    with pytest.raises(RuntimeError, match="publish failed"):
        await replay_that_fails()
    assert seen != [None]
    await rig.wait_count(1)
    assert [letter.id for letter in (await rig.dead.browse()).letters] == [message_id]


async def test_a_forged_message_dead_lettered_by_a_consumer_is_listed_with_its_reason(
    rig: Rig, amqp_url: str, namespace: str, tmp_path: Path
) -> None:
    settings = BrokerSettings(
        amqp_url=amqp_url, namespace=namespace, data_dir=tmp_path, keys_dir=rig.keys_dir
    )
    consume_channel = await open_channel(rig.connection, prefetch=4)
    opener = Opener("worker", TrustStoreFile(rig.keys_dir / "trust.json"), spent=SpentIds(100))
    handled: list[Any] = []

    async def handler(opened: Any, delivery: Any) -> None:
        handled.append(opened)

    consumer = Consumer(
        queue="worker.jobs",
        channel=consume_channel,
        topology=rig.topology,
        opener=opener,
        publisher=rig.publisher,
        audit=RecordingAuditSink(),
        handlers={"job.submitted": handler},
        settings=settings,
    )
    await consumer.start()
    try:
        rogue = SigningKey(
            service="gateway",
            kid="rogue-kid",
            alg="ES256",
            private_key=ec.generate_private_key(ec.SECP256R1()),
        )
        message = job_message("mallory")
        forged = Sealer(rogue).seal(
            message, typ="job.submitted", aud="worker", sub="mallory", job=message.job_id
        )
        await rig.publisher.publish_raw(
            rig.publisher.message_for(forged), routing_key=rig.topology.queue("worker.jobs")
        )
        await rig.wait_count(1)
    finally:
        await consumer.stop(grace=5)
    [letter] = (await rig.dead.browse()).letters
    assert (letter.message_id, letter.reason, letter.rejected_by) == (
        forged.jti,
        "unknown_kid",
        "worker",
    )
    assert unverified_claims(letter.envelope)["sub"] == "mallory"
    assert not handled


async def test_a_message_and_its_copy_are_two_letters_with_ids_of_their_own(
    rig: Rig, amqp_url: str, namespace: str, tmp_path: Path
) -> None:
    """Issue 11.13: letters took the AMQP message_id as id, so a message and its replayed copy
    shared one (44 letters, 42 ids) and a replay by id could take either. Each has its own, and
    the copy says why it can never be replayed."""
    settings = BrokerSettings(
        amqp_url=amqp_url, namespace=namespace, data_dir=tmp_path, keys_dir=rig.keys_dir
    )
    consume_channel = await open_channel(rig.connection, prefetch=4)
    opener = Opener("worker", TrustStoreFile(rig.keys_dir / "trust.json"), spent=SpentIds(100))

    async def handler(opened: Any, delivery: Any) -> None:
        raise PermanentFailure("cannot ever work")

    consumer = Consumer(
        queue="worker.jobs",
        channel=consume_channel,
        topology=rig.topology,
        opener=opener,
        publisher=Publisher(
            consume_channel,
            rig.topology,
            Sealer(KeyRing.load(rig.keys_dir, "worker").signing_key()),
        ),
        audit=RecordingAuditSink(),
        handlers={"job.submitted": handler},
        settings=settings,
    )
    await consumer.start()
    try:
        sealed = rig.sealer.seal(job_message(), aud="worker", sub="alice")
        await rig.publisher.publish(sealed)
        await rig.wait_count(1)
        await rig.publisher.publish(sealed)  # a byte-for-byte copy
        await rig.wait_count(2)
    finally:
        await consumer.stop(grace=5)
    letters = (await rig.dead.browse()).letters
    assert len(letters) == 2
    assert len({letter.id for letter in letters}) == 2
    assert {letter.message_id for letter in letters} == {sealed.jti}
    by_reason = {letter.reason: letter for letter in letters}
    assert by_reason["permanent_failure"].never_replayable is None
    assert "copy" in (by_reason["replay"].never_replayable or "")
    await rig.wait_count(2)
    async with rig.dead.take(by_reason["replay"].id) as taken:
        assert taken is not None
        assert taken.letter.reason == "replay"
        await taken.ack()
    await rig.wait_count(1)
    assert [letter.reason for letter in (await rig.dead.browse()).letters] == ["permanent_failure"]


async def test_a_listing_stops_at_the_bytes_it_may_hold(rig: Rig) -> None:
    for _ in range(3):
        await rig.dead_letter()
    await rig.wait_count(3)
    order = [letter.id for letter in (await rig.dead.browse()).letters]
    small = DeadLetterQueues(rig.connection, rig.topology, max_held_bytes=1)
    try:
        async with small.take(order[-1]) as taken:
            assert taken is None  # the first message already fills the budget: not found
        page = await small.browse()
        assert (len(page.letters), page.more) == (1, True)
    finally:
        await small.close()
    await rig.wait_count(3)  # nothing lost
    assert sorted(letter.id for letter in (await rig.dead.browse()).letters) == sorted(order)


async def test_a_closed_connection_is_reported_as_unavailable(rig: Rig) -> None:
    from broker import BrokerUnavailable

    closed = await connect(str(rig.connection.url))
    await closed.close()
    with pytest.raises(BrokerUnavailable):
        await DeadLetterQueues(closed, rig.topology, timeout=2).browse()
    # The one used by the rig still answers.
    assert (await rig.dead.browse()).letters == []
