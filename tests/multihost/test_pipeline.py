"""The pipeline spread over hosts (issue 10 item 6): workers B1/B2, parser C1 and audit D with a
standby D2, each a network namespace with a keys directory made only by ``sealflow keys export``
from the operator's admin directory, sharing the root's RabbitMQ and PostgreSQL through relays.

Jobs are submitted as host A's gateway: its exported ring seals ``job.submitted`` and the blob is
stored with the job's row in PostgreSQL (``create_with_blob``), as the gateway's upload does.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage
from faults_testing import (
    DaemonProcess,
    JobLedger,
    daemon_env,
    text_document,
    wait_audit,
)
from multihost import Host, Network, private_key_files, relayed
from store_testing import postgres_url as postgres_url  # the session fixture, registered here
from store_testing import reset_postgres

from broker import REJECT_REASON_HEADER, Publisher, Sealer, Topology, connect, open_channel
from keys import KeyRing
from store import PgJobStore

pytestmark = [pytest.mark.multihost, pytest.mark.integration, pytest.mark.timeout(240)]

ROLES: dict[str, tuple[str, ...]] = {
    "A": ("gateway", "identity"),
    "B1": ("worker",),
    "B2": ("worker",),
    "C1": ("parser",),
    "D": ("audit",),
    "D2": ("audit",),
}
"""Each host and the services whose keys it holds."""


@dataclass
class Cluster:
    """The hosts, the admin keys directory, and the daemons started on the hosts."""

    network: Network
    admin: Path
    envs: dict[str, dict[str, str]]
    daemons: dict[str, DaemonProcess] = field(default_factory=dict)

    def host(self, name: str) -> Host:
        return self.network.hosts[name]

    def start(self, host: str, service: str) -> DaemonProcess:
        """Start ``service`` on ``host`` (not waiting for it)."""
        daemon = self.host(host).daemon(service, self.envs[host])
        self.daemons[host] = daemon
        return daemon

    def sealflow(self, host: str, *args: str) -> str:
        """Run a ``sealflow`` command on ``host`` with its settings; its output, or fail."""
        done = self.host(host).run(self.host(host).sealflow(*args), env=self.envs[host])
        assert done.returncode == 0, (
            f"{host}: sealflow {' '.join(args)}\n{done.stdout}{done.stderr}"
        )
        return done.stdout

    def close(self) -> None:
        for daemon in self.daemons.values():
            if daemon.process.poll() is None:
                daemon.process.kill()
                daemon.process.wait(10)


def _admin(*args: str) -> None:
    """An operator's ``sealflow`` command, run in the root namespace; fails with its output."""
    done = subprocess.run(
        [sys.executable, "-m", "sealflow", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def cluster(
    network: Network,
    host_amqp_url: str,
    postgres_url: str,
    namespace: str,
    tmp_path: Path,
    cleanup_namespace: None,
) -> Iterator[Cluster]:
    """Every host of ``ROLES`` with its own exported keys and settings; the schema upgraded."""
    reset_postgres(postgres_url)
    admin = tmp_path / "admin-keys"
    _admin("keys", "init", "--keys-dir", str(admin))
    database_url = relayed(postgres_url, network.root_address)
    envs: dict[str, dict[str, str]] = {}
    for name, services in ROLES.items():
        host = network.add_host(name)
        _admin("keys", "export", *services, str(host.keys_dir), "--keys-dir", str(admin))
        envs[name] = daemon_env(
            host_amqp_url,
            namespace,
            host.data_dir,
            host.keys_dir,
            SEALFLOW_DATABASE_URL=database_url,
            SEALFLOW_AUDIT_LOG_NAME=f"host-{name}",
        )
    made = Cluster(network, admin, envs)
    made.sealflow("A", "db", "upgrade")
    try:
        yield made
    finally:
        made.close()


@dataclass
class Wire:
    """The test's own connection: a tap on ``job.submitted`` and the worker's dead letters."""

    channel: Any
    topology: Topology
    tap: Any
    ledger: JobLedger

    async def captured(self, timeout: float = 30) -> AbstractIncomingMessage:
        """The next ``job.submitted`` seen on the wire."""
        async with asyncio.timeout(timeout):
            while True:
                message: AbstractIncomingMessage | None = await self.tap.get(
                    fail=False, no_ack=True
                )
                if message is not None:
                    return message
                await asyncio.sleep(0.05)

    async def replay(self, message: AbstractIncomingMessage) -> None:
        """Publish a captured envelope again, body and properties as they were, straight to
        ``worker.jobs``."""
        copy = aio_pika.Message(
            message.body,
            headers=dict(message.headers),
            message_id=message.message_id,
            content_type=message.content_type,
            type=message.type,
            correlation_id=message.correlation_id,
            app_id=message.app_id,
            timestamp=message.timestamp,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await self.channel.default_exchange.publish(
            copy, routing_key=self.topology.queue("worker.jobs")
        )

    async def dead_letter(self, timeout: float = 30) -> AbstractIncomingMessage:
        """The next letter of the worker's DLQ."""
        dlq = await self.channel.get_queue(self.topology.queue("worker.jobs.dlq"), ensure=False)
        async with asyncio.timeout(timeout):
            while True:
                letter: AbstractIncomingMessage | None = await dlq.get(fail=False, no_ack=True)
                if letter is not None:
                    return letter
                await asyncio.sleep(0.05)

    def reseal_as(self, keys_dir: Path) -> None:
        """Seal from now on with the gateway's current key in ``keys_dir`` (after a rotation)."""
        signing = KeyRing.load(keys_dir, "gateway").signing_key()
        self.ledger.publisher = Publisher(self.channel, self.topology, Sealer(signing))


@pytest.fixture
async def wire(
    cluster: Cluster, amqp_url: str, postgres_url: str, namespace: str
) -> AsyncIterator[Wire]:
    """Seals as host A's gateway (its exported ring), taps ``job.submitted`` on the wire."""
    connection = await connect(amqp_url)
    channel = await open_channel(connection)
    topology = Topology(namespace)
    declared = await topology.declare(channel)
    tap = await channel.declare_queue(topology.queue("test.tap"), auto_delete=True)
    await tap.bind(declared.exchanges["jobs"], "job.submitted")
    store = await PgJobStore.open(postgres_url)
    gateway_key = KeyRing.load(cluster.host("A").keys_dir, "gateway").signing_key()
    ledger = JobLedger(
        cluster.host("A").data_dir, Publisher(channel, topology, Sealer(gateway_key)), store
    )
    try:
        yield Wire(channel, topology, tap, ledger)
    finally:
        await store.close()
        await connection.close()


async def _submit(wire: Wire, count: int) -> list[str]:
    return [await wire.ledger.submit(text_document(i)) for i in range(count)]


async def test_the_pipeline_across_hosts(cluster: Cluster, wire: Wire) -> None:
    """Jobs reach done across hosts; a captured envelope replayed is refused; a SIGKILLed worker
    loses nothing; a rotation reaches every host over the control bus; no host holds another
    service's private key; the audit chain verifies on both audit hosts after a failover."""
    audit_d = cluster.start("D", "audit")
    audit_d.wait_ready()
    standby = cluster.start("D2", "audit")
    parser = cluster.start("C1", "parser")
    b1 = cluster.start("B1", "worker")
    for daemon in (standby, parser, b1):
        daemon.wait_ready()

    # Jobs reach done; B1 is the only worker, so it handles the envelope the tap saw.
    first = await _submit(wire, 2)
    assert await wire.ledger.wait_final(first) == dict.fromkeys(first, "done")
    captured = await wire.captured()

    # The captured copy, replayed to two live workers, is refused whichever gets it.
    b2 = cluster.start("B2", "worker")
    b2.wait_ready()
    for _ in range(2):
        await wire.replay(captured)
        letter = await wire.dead_letter()
        assert letter.headers[REJECT_REASON_HEADER] == "replay"
        assert letter.body == captured.body

    # B1 dies mid-work (SIGKILL: no acks, no clean-up); B2 finishes every job.
    mark = b1.mark()
    batch = await _submit(wire, 8)
    b1.wait_for("message.handled", since=mark)
    b1.kill()
    assert await wire.ledger.wait_final(batch, timeout=120) == dict.fromkeys(batch, "done")

    # The gateway's key rotated on A (next, then promote) with the admin root key: the bundle
    # reaches the worker over sealflow.control, and a job sealed with the new key is done.
    root_key = str(cluster.admin / "root.pem")
    for step in ("next", "promote"):
        said = cluster.sealflow(
            "A", "keys", "rotate", "gateway", "--step", step, "--root-key", root_key
        )
    version = re.search(r"signed trust bundle (\S+):", said)
    assert version is not None, said
    applied = f"trust bundle {version.group(1)} "
    records = await wait_audit(
        cluster.host("D").data_dir,
        lambda records: (
            {"worker", "parser"}
            <= {
                r.event.source
                for r in records
                if r.event.type == "trust.bundle_applied" and applied in (r.event.detail or "")
            }
        ),
    )
    assert any(applied in (r.event.detail or "") for r in records), "bundle never applied"
    wire.reseal_as(cluster.host("A").keys_dir)
    after_rotation = await _submit(wire, 1)
    assert await wire.ledger.wait_final(after_rotation) == dict.fromkeys(after_rotation, "done")

    # Failover: the active audit daemon stops; the standby takes the next events.
    assert audit_d.stop() == 0
    after_failover = await _submit(wire, 1)
    assert await wire.ledger.wait_final(after_failover) == dict.fromkeys(after_failover, "done")
    taken = await wait_audit(
        cluster.host("D2").data_dir,
        lambda records: any(
            r.event.type == "job.completed" and r.event.job in after_failover for r in records
        ),
    )
    assert any(r.event.job in after_failover for r in taken), "the standby never took over"
    for name in ("B2", "C1", "D2"):
        assert cluster.daemons[name].stop() == 0, cluster.daemons[name].tail()
    for name in ("D", "D2"):
        assert "intact" in cluster.sealflow(name, "audit", "verify")

    # No host's directory holds another service's private key (nor the root key).
    for name, services in ROLES.items():
        host = cluster.host(name)
        for path in private_key_files(host.root):
            owner = path.relative_to(host.keys_dir).parts[0]
            assert owner in services, f"{name} holds {path}"
