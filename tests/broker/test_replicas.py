"""Two replicas of one daemon sharing PostgreSQL: a replay or a revocation seen by one holds on
the other (issue 10), and a store that does not answer never lets a message through unchecked.

Each replica is a real :class:`ServiceRuntime` of the worker with a data directory of its own
(another host's disk), consuming the same queue of a real RabbitMQ.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import structlog
from audit_testing import RecordingAuditSink
from psycopg import sql
from sealflow_testing import job_message
from store_testing import fresh_database, reset_postgres
from store_testing import postgres_url as postgres_url  # the session fixture, registered here

from broker import (
    REJECT_REASON_HEADER,
    BrokerSettings,
    Delivery,
    Opened,
    Publisher,
    PublishFailed,
    Sealed,
    Sealer,
    ServiceRuntime,
    Topology,
    connect,
    open_channel,
    publish_control,
)
from identity.control import broadcast_revocations, new_revocation
from keys import KeyRing
from schemas import Revocation
from store import PgRevocations, PgSpentEnvelopes

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

QUEUE = "worker.jobs"


@dataclass
class Replica:
    """One worker process: its runtime, what it audited and the envelopes it handled."""

    runtime: ServiceRuntime
    audit: RecordingAuditSink = field(default_factory=RecordingAuditSink)
    handled: list[str] = field(default_factory=list)
    handled_one: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, opened: Opened[Any], delivery: Delivery) -> None:
        """The job handler: note the envelope's id."""
        self.handled.append(opened.claims.jti)
        self.handled_one.set()


@dataclass
class Bus:
    """The test's own connection: a gateway and an identity publisher, and the worker's DLQ."""

    channel: Any
    topology: Topology
    gateway: Publisher
    identity: Publisher

    async def send(self, owner: str = "alice") -> Sealed:
        """Publish a fresh ``job.submitted`` to the worker as the gateway."""
        message = job_message(owner)
        return await self.gateway.send(
            message, typ="job.submitted", aud="worker", sub=owner, job=message.job_id
        )

    async def dead_letters(self, count: int, timeout: float = 30) -> list[Any]:
        """The next ``count`` letters of the worker's DLQ, waiting for them (bounded)."""
        dlq = await self.channel.get_queue(self.topology.queue(f"{QUEUE}.dlq"), ensure=False)
        letters: list[Any] = []
        async with asyncio.timeout(timeout):
            while len(letters) < count:
                letter = await dlq.get(fail=False, no_ack=True)
                if letter is None:
                    await asyncio.sleep(0.05)
                else:
                    letters.append(letter)
        return letters


StartReplica = Callable[..., Awaitable[Replica]]


@pytest.fixture
async def bus(
    amqp_url: str, namespace: str, keys_dir: Path, cleanup_namespace: None
) -> AsyncIterator[Bus]:
    """Publishers of the gateway and the identity on the test's namespace."""
    connection = await connect(amqp_url)
    channel = await open_channel(connection)
    topology = Topology(namespace)
    await topology.declare(channel)

    def publisher(service: str) -> Publisher:
        return Publisher(channel, topology, Sealer(KeyRing.load(keys_dir, service).signing_key()))

    try:
        yield Bus(channel, topology, publisher("gateway"), publisher("identity"))
    finally:
        await connection.close()


@pytest.fixture
async def start_replica(
    amqp_url: str, namespace: str, keys_dir: Path, tmp_path: Path, postgres_url: str
) -> AsyncIterator[StartReplica]:
    """Starts worker replicas on one database (each with its own disk); stops them after."""
    reset_postgres(postgres_url)
    started: list[Replica] = []

    async def start(host: str, *, database_url: str = postgres_url) -> Replica:
        settings = BrokerSettings(
            amqp_url=amqp_url,
            namespace=namespace,
            keys_dir=keys_dir,
            data_dir=tmp_path / host,
            database_url=database_url,
            shutdown_grace=5,
        )
        replica = Replica(ServiceRuntime("worker", settings))
        started.append(replica)
        await replica.runtime.start()
        replica.runtime.consume(QUEUE, {"job.submitted": replica.handle}, audit=replica.audit)
        await replica.runtime.start_consumers()
        return replica

    try:
        yield start
    finally:
        for replica in started:
            await replica.runtime.stop()


def _rejections(replica: Replica) -> list[str | None]:
    return [e.reason for e in replica.audit.events if e.type == "envelope.rejected"]


async def test_a_copy_handled_by_one_replica_is_refused_by_the_other_as_a_replay(
    bus: Bus, start_replica: StartReplica
) -> None:
    """Attack (issue 10): an envelope captured on the wire after B1 handled it, published again
    and delivered to B2, was handled a second time: each replica kept its own spent ids."""
    b1 = await start_replica("b1")
    sealed = await bus.send()
    await asyncio.wait_for(b1.handled_one.wait(), 15)
    await b1.runtime.stop()
    b2 = await start_replica("b2")
    await bus.gateway.publish(sealed)  # the byte-for-byte copy; only B2 consumes now
    (dead,) = await bus.dead_letters(1)
    assert dead.headers[REJECT_REASON_HEADER] == "replay"
    assert dead.body == sealed.body
    assert b2.handled == []
    assert _rejections(b2) == ["replay"]
    assert b1.handled == [sealed.jti]


async def test_copies_sent_to_two_running_replicas_are_handled_once(
    bus: Bus, start_replica: StartReplica
) -> None:
    """Six copies of one envelope spread over two live replicas: one is handled, five are
    dead-lettered and audited as replays, whichever replica each reached."""
    b1 = await start_replica("b1")
    b2 = await start_replica("b2")
    sealed = await bus.send()
    for _ in range(5):
        await bus.gateway.publish(sealed)
    letters = await bus.dead_letters(5)
    await asyncio.wait_for(asyncio.shield(_either(b1, b2)), 15)
    assert [letter.headers[REJECT_REASON_HEADER] for letter in letters] == ["replay"] * 5
    assert b1.handled + b2.handled == [sealed.jti]
    assert sorted(_rejections(b1) + _rejections(b2)) == ["replay"] * 5


async def _either(*replicas: Replica) -> None:
    """Returns once any of ``replicas`` handled a message."""
    waits = [asyncio.ensure_future(r.handled_one.wait()) for r in replicas]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


async def test_a_replica_that_refuses_a_copy_leaves_the_holders_claim_pending(
    bus: Bus, start_replica: StartReplica, postgres_url: str
) -> None:
    """B1 is mid-work on an envelope (its claim pending) when a copy reaches B2: B2 refuses it
    and must not settle B1's claim, or the broker's redelivery after a crash of B1 would be
    dropped as a duplicate and the job lost."""
    holder = await PgSpentEnvelopes.open(postgres_url)
    try:
        message = job_message()
        sealed = bus.gateway.sealer.seal(
            message, typ="job.submitted", aud="worker", sub="alice", job=message.job_id
        )
        assert await holder.claim(sealed.jti, sealed.exp, now=time.time(), redelivered=False)
        b2 = await start_replica("b2")
        await bus.gateway.publish(sealed)
        (dead,) = await bus.dead_letters(1)
        await b2.runtime.stop()  # waits for the refusal to be settled
        assert dead.headers[REJECT_REASON_HEADER] == "replay"
        assert b2.handled == []
        assert [(jti, pending) for jti, _, pending in await holder.spent(time.time())] == [
            (sealed.jti, True)
        ]
    finally:
        await holder.close()


async def test_a_revocation_applied_before_a_replica_starts_is_honoured_by_it(
    bus: Bus, start_replica: StartReplica, postgres_url: str
) -> None:
    """Attack (issue 10): a worker started after the broadcast, on another host, accepted a
    revoked user's job: the revocation lived in memory and in the first host's journal only."""
    b1 = await start_replica("b1")
    revocation = Revocation(
        revocation_id=secrets.token_hex(16),
        kind="sub",
        value="mallory",
        reason="test: user disabled",
        issued_at=datetime.now(UTC),
    )
    await publish_control(bus.identity, revocation, typ="control.revocation", sub="root")
    shared = await PgRevocations.open(postgres_url)
    try:
        async with asyncio.timeout(15):
            while revocation not in await shared.load(datetime.now(UTC).timestamp()):
                await asyncio.sleep(0.05)
    finally:
        await shared.close()
    await b1.runtime.stop()
    b2 = await start_replica("b2")
    sealed = await bus.send(owner="mallory")
    (dead,) = await bus.dead_letters(1)
    assert dead.message_id == sealed.jti
    assert dead.headers[REJECT_REASON_HEADER] == "revoked"
    assert b2.handled == []
    assert _rejections(b2) == ["revoked"]


async def test_a_revocation_sent_while_no_daemon_runs_is_honoured_by_one_started_later(
    bus: Bus,
    start_replica: StartReplica,
    amqp_url: str,
    namespace: str,
    keys_dir: Path,
    tmp_path: Path,
    postgres_url: str,
) -> None:
    """``sealflow revoke`` on the identity's host while every worker is down: the fanout
    reaches no one, but the revocation is in the database, and a worker started later on
    another host refuses the revoked user's job."""
    settings = BrokerSettings(
        amqp_url=amqp_url,
        namespace=namespace,
        keys_dir=keys_dir,
        data_dir=tmp_path / "identity-host",
        database_url=postgres_url,
    )
    with pytest.raises(PublishFailed):  # stored first; then nobody listens to the fanout
        await broadcast_revocations(settings, [new_revocation("sub", "mallory", "test")])
    b1 = await start_replica("b1")
    sealed = await bus.send(owner="mallory")
    (dead,) = await bus.dead_letters(1)
    assert dead.message_id == sealed.jti
    assert dead.headers[REJECT_REASON_HEADER] == "revoked"
    assert b1.handled == []


@contextlib.asynccontextmanager
async def _database_away(url: str) -> AsyncIterator[None]:
    """The database is dropped (its connections cut) for the block, then made again, migrated."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    server = urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, parts.fragment))
    with psycopg.connect(server, autocommit=True, connect_timeout=10) as admin:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
    try:
        yield
    finally:
        with psycopg.connect(server, autocommit=True, connect_timeout=10) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        migrated = await PgSpentEnvelopes.open(url)
        await migrated.close()


async def test_a_message_is_never_handled_while_the_shared_store_is_away(
    bus: Bus, start_replica: StartReplica
) -> None:
    """PostgreSQL away: the envelope cannot be checked across replicas, so it is put back
    (never handled unchecked, never dead-lettered) and handled once the database answers."""
    with fresh_database() as url, structlog.testing.capture_logs() as logs:
        b1 = await start_replica("b1", database_url=url)
        async with _database_away(url):
            sealed = await bus.send()
            async with asyncio.timeout(30):
                while not any(e["event"] == "spent_ids.shared_unavailable" for e in logs):
                    await asyncio.sleep(0.05)
            assert b1.handled == []
            assert not b1.audit.events
        await asyncio.wait_for(b1.handled_one.wait(), 45)
        await b1.runtime.stop()
    assert b1.handled == [sealed.jti]
    refused = [e for e in logs if e["event"] == "spent_ids.shared_unavailable"]
    assert refused[0]["log_level"] == "error"
    assert refused[0]["action"] == "requeue"


async def test_a_per_instance_queue_spends_its_ids_in_this_process_only(
    start_replica: StartReplica,
) -> None:
    """A queue whose copies reach every replica must not make the others refuse theirs: its
    consumer keeps spent ids locally; every other consumer shares them."""
    b1 = await start_replica("b1")
    shared = b1.runtime.consume("worker.jobs", {"job.submitted": b1.handle})
    own = b1.runtime.consume("worker.jobs", {"job.submitted": b1.handle}, per_instance=True)
    assert b1.runtime.shared_spent is not None
    assert shared.shared_spent is b1.runtime.shared_spent
    assert own.shared_spent is None
