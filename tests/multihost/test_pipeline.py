"""The pipeline spread over hosts (issue 10 item 6): identity + gateway on A, a second gateway
on A2, workers B1/B2, parsers C1/C2, audit D with a standby D2, each a network namespace whose
keys directory is made only by ``sealflow keys export`` from the operator's admin directory, all
sharing the root's RabbitMQ and PostgreSQL through the test's relays. Every job is uploaded
through A's gateway with a token from A's identity."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import pytest
from aio_pika.abc import AbstractIncomingMessage
from daemon_processes import DaemonProcess, daemon_env
from faults_testing import FINAL_STATES, JobLedger, text_document, wait_audit
from multihost import Host, Network, private_key_files, relayed, scoped_env
from store_testing import postgres_url as postgres_url  # the session fixture, registered here
from store_testing import reset_identity, reset_postgres

from audit import AuditRecord
from broker import REJECT_REASON_HEADER, Publisher, Sealer, Topology, connect, open_channel
from keys import KeyRing
from store import PgJobStore

pytestmark = [pytest.mark.multihost, pytest.mark.integration, pytest.mark.timeout(240)]

ROLES: dict[str, tuple[str, ...]] = {
    "A": ("gateway", "identity"),
    "A2": ("gateway",),
    "B1": ("worker",),
    "B2": ("worker",),
    "C1": ("parser",),
    "C2": ("parser",),
    "D": ("audit",),
    "D2": ("audit",),
}
"""Each host and the services whose keys it holds."""

CLIENT = "multihost-ci"
"""The confidential client the test registers with the identity on A."""

IDENTITY_PORT, GATEWAY_PORT, AUDIT_API_PORT = 8081, 8080, 8082
"""The listeners' ports: fixed, as each host is a namespace of its own (no port is shared)."""


def _listeners(hosts: dict[str, Host]) -> dict[str, dict[str, str]]:
    """Per host, the settings of its HTTP listeners: on the bridge, and where to find the
    issuer (identity on A) and the audit query API (D)."""
    issuer = f"http://{hosts['A'].address}:{IDENTITY_PORT}"
    gateway = {
        "SEALFLOW_ISSUER": issuer,
        "SEALFLOW_GATEWAY_HOST": "0.0.0.0",
        "SEALFLOW_GATEWAY_PORT": str(GATEWAY_PORT),
        "SEALFLOW_GATEWAY_HEALTH_PORT": "0",
        "SEALFLOW_AUDIT_URL": f"http://{hosts['D'].address}:{AUDIT_API_PORT}",
    }
    identity = {
        "SEALFLOW_IDENTITY_HOST": "0.0.0.0",
        "SEALFLOW_IDENTITY_PORT": str(IDENTITY_PORT),
        "SEALFLOW_IDENTITY_HEALTH_PORT": "0",
    }
    audit = {"SEALFLOW_AUDIT_API_HOST": "0.0.0.0", "SEALFLOW_AUDIT_API_PORT": str(AUDIT_API_PORT)}
    return {"A": gateway | identity, "A2": gateway, "D": audit, "D2": audit}


@dataclass
class Cluster:
    """The hosts, the admin keys directory, and the daemons started on the hosts."""

    network: Network
    admin: Path
    envs: dict[str, dict[str, str]]
    daemons: dict[str, DaemonProcess] = field(default_factory=dict)

    def host(self, name: str) -> Host:
        """The host called ``name``."""
        return self.network.hosts[name]

    def start(self, host: str, service: str) -> DaemonProcess:
        """Start ``service`` on ``host`` (not waiting for it)."""
        daemon = self.host(host).daemon(service, self.envs[host])
        self.daemons[f"{host}:{service}"] = daemon
        return daemon

    def sealflow(self, host: str, *args: str) -> str:
        """Run a ``sealflow`` command on ``host`` with its settings; its output, or fail."""
        done = self.host(host).run(self.host(host).sealflow(*args), env=self.envs[host])
        assert done.returncode == 0, (
            f"{host}: sealflow {' '.join(args)}\n{done.stdout}{done.stderr}"
        )
        return done.stdout

    def close(self) -> None:
        """Kill whatever daemon still runs (the test stops them itself when it gets there)."""
        for daemon in self.daemons.values():
            if daemon.process.poll() is None:
                daemon.process.kill()
                daemon.process.wait(10)


def _admin(*args: str) -> None:
    """An operator's ``sealflow`` command, run in the root namespace; fails with its output."""
    done = subprocess.run(
        [sys.executable, "-m", "sealflow", *args],
        env=scoped_env(os.environ),
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
    reset_identity(postgres_url)
    admin = tmp_path / "admin-keys"
    _admin("keys", "init", "--keys-dir", str(admin))
    database_url = relayed(postgres_url, network.root_address)
    hosts = {name: network.add_host(name) for name in ROLES}
    listeners = _listeners(hosts)
    envs: dict[str, dict[str, str]] = {}
    for name, services in ROLES.items():
        host = hosts[name]
        _admin("keys", "export", *services, str(host.keys_dir), "--keys-dir", str(admin))
        envs[name] = daemon_env(
            host_amqp_url,
            namespace,
            host.data_dir,
            host.keys_dir,
            SEALFLOW_DATABASE_URL=database_url,
            SEALFLOW_AUDIT_LOG_NAME=f"host-{name}",
            SEALFLOW_AUDIT_BATCH_WAIT="0.001",
            SEALFLOW_CHECKPOINT_EVERY="5",
            SEALFLOW_SHUTDOWN_GRACE="10",
            **listeners.get(name, {}),
        )
    made = Cluster(network, admin, envs)
    made.sealflow("A", "db", "upgrade")
    try:
        yield made
    finally:
        made.close()


@dataclass
class Wire:
    """The test's own connection: a tap on ``job.submitted`` and the worker's dead letters;
    ``ledger`` reads the jobs' states from the shared store (nothing is published through it:
    every job is uploaded through A)."""

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


@pytest.fixture
async def wire(
    cluster: Cluster, amqp_url: str, postgres_url: str, namespace: str
) -> AsyncIterator[Wire]:
    """Taps ``job.submitted`` on the wire; reads the jobs from PostgreSQL."""
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


async def _client_token(host: Host, secret: str) -> str:
    """An access token of the client credentials grant from the identity on ``host``."""
    form = {"grant_type": "client_credentials", "client_id": CLIENT, "client_secret": secret}
    url = f"http://{host.address}:{IDENTITY_PORT}/token"
    async with aiohttp.ClientSession() as http, http.post(url, data=form) as response:
        assert response.status == 200, await response.text()
        body = await response.json()
    access = body["access_token"]
    assert isinstance(access, str)
    return access


async def _upload(host: Host, token: str, documents: list[bytes]) -> list[str]:
    """``POST /api/jobs`` on the gateway of ``host``, one text file per document: the job ids."""
    form = aiohttp.FormData()
    for i, data in enumerate(documents):
        form.add_field("file", data, filename=f"doc-{i}.txt", content_type="text/plain")
    url = f"http://{host.address}:{GATEWAY_PORT}/api/jobs"
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=form, headers=headers) as response,
    ):
        assert response.status == 202, await response.text()
        body = await response.json()
    return [job["job_id"] for job in body["jobs"]]


async def _search(host: Host, token: str, query: str) -> list[dict[str, Any]]:
    """``GET /api/search`` on the gateway of ``host`` as the token's holder: the hits."""
    url = f"http://{host.address}:{GATEWAY_PORT}/api/search"
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession() as http,
        http.get(url, params={"q": query}, headers=headers) as response,
    ):
        assert response.status == 200, await response.text()
        body = await response.json()
    hits = body["hits"]
    assert isinstance(hits, list)
    return hits


async def test_the_pipeline_across_hosts(cluster: Cluster, wire: Wire) -> None:
    """Jobs reach done across hosts and are found through A2 with a token from A; a captured
    envelope replayed is refused; a SIGKILLed worker loses nothing; a rotation on A reaches the
    other hosts over the control bus; the audit chain verifies on both audit hosts after a
    failover; no host holds another service's private key."""
    audit_d = cluster.start("D", "audit")
    audit_d.wait_ready()
    standby = cluster.start("D2", "audit")
    parsers = [cluster.start(name, "parser") for name in ("C1", "C2")]
    b1 = cluster.start("B1", "worker")
    identity = cluster.start("A", "identity")
    gateways = [cluster.start(name, "gateway") for name in ("A", "A2")]
    for daemon in (standby, *parsers, b1):
        daemon.wait_ready()
    identity.wait_for("identity.ready", timeout=90)
    for gateway in gateways:
        gateway.wait_for("gateway.listening", timeout=90)

    # A confidential client of the identity on A (its store is PostgreSQL) gets a token there.
    added = cluster.sealflow(
        "A", "clients", "add", CLIENT, "--grant", "client_credentials", "--role", "user"
    )
    secret = re.search(r"client secret \(shown once, stored hashed\): (\S+)", added)
    assert secret is not None, added
    token = await _client_token(cluster.host("A"), secret.group(1))

    # Uploads through A's gateway reach done; B1 is the only worker, so it handles the envelope
    # the tap saw. Their text is found by a search through the second gateway, A2.
    word = f"needle{secrets.token_hex(6)}"
    first = await _upload(
        cluster.host("A"), token, [f"multihost document {i} {word}\n".encode() for i in range(2)]
    )
    assert await wire.ledger.wait_final(first) == dict.fromkeys(first, "done")
    captured = await wire.captured()
    hits = await _search(cluster.host("A2"), token, word)
    assert {hit["job_id"] for hit in hits} == set(first)

    # B1 dies mid-work (SIGKILL: no acks, no clean-up) while it is the only worker: jobs are
    # left unfinished (no worker moves them now); B2, started after, finishes every one.
    mark = b1.mark()
    batch = await _upload(cluster.host("A"), token, [text_document(i) for i in range(8)])
    b1.wait_for("message.handled", since=mark)
    b1.kill()
    left = await wire.ledger.states(batch)
    assert any(state not in FINAL_STATES for state in left.values()), left
    b2 = cluster.start("B2", "worker")
    b2.wait_ready()
    assert await wire.ledger.wait_final(batch, timeout=120) == dict.fromkeys(batch, "done")

    # The envelope captured on the wire after B1 handled it, delivered to B2 byte for byte, is
    # dead-lettered as a replay (the spent ids are shared in PostgreSQL).
    await wire.replay(captured)
    letter = await wire.dead_letter()
    assert letter.headers[REJECT_REASON_HEADER] == "replay"
    assert letter.body == captured.body
    assert letter.message_id == captured.message_id

    # The gateway's key rotated on A (next, then promote) with the admin root key: the bundle
    # reaches the worker over sealflow.control, and a job sealed with the new key is done.
    root_key = str(cluster.admin / "root.pem")
    gateway_mark = gateways[0].mark()
    for step in ("next", "promote"):
        said = cluster.sealflow(
            "A", "keys", "rotate", "gateway", "--step", step, "--root-key", root_key
        )
    version = re.search(r"signed trust bundle (\S+):", said)
    assert version is not None, said
    applied = f"trust bundle {version.group(1)} "

    def applied_by(records: list[AuditRecord]) -> set[str]:
        return {
            r.event.source
            for r in records
            if r.event.type == "trust.bundle_applied" and applied in (r.event.detail or "")
        }

    receivers = {"worker", "parser", "audit", "gateway"}
    records = await wait_audit(cluster.host("D").data_dir, lambda r: receivers <= applied_by(r))
    assert receivers <= applied_by(records), sorted(applied_by(records))
    new_kid = KeyRing.load(cluster.host("A").keys_dir, "gateway").signing_key().kid
    switched = gateways[0].wait_for("keys.signing_key_switched", since=gateway_mark)
    assert switched.fields["kid"] == new_kid
    after_rotation = await _upload(cluster.host("A"), token, [b"sealed with the new key\n"])
    assert await wire.ledger.wait_final(after_rotation) == dict.fromkeys(after_rotation, "done")

    # Failover: the active audit daemon stops; the standby takes the next events.
    assert audit_d.stop() == 0
    after_failover = await _upload(cluster.host("A"), token, [b"after the failover\n"])
    assert await wire.ledger.wait_final(after_failover) == dict.fromkeys(after_failover, "done")
    taken = await wait_audit(
        cluster.host("D2").data_dir,
        lambda records: any(
            r.event.type == "job.completed" and r.event.job in after_failover for r in records
        ),
    )
    assert any(r.event.job in after_failover for r in taken), "the standby never took over"
    for name in (
        "A:gateway",
        "A2:gateway",
        "A:identity",
        "B2:worker",
        "C1:parser",
        "C2:parser",
        "D2:audit",
    ):
        assert cluster.daemons[name].stop() == 0, cluster.daemons[name].tail()
    for name in ("D", "D2"):
        assert "intact" in cluster.sealflow(name, "audit", "verify")

    # No host's directory holds another service's private key (nor the root key).
    for name, services in ROLES.items():
        host = cluster.host(name)
        for path in private_key_files(host.root):
            owner = path.relative_to(host.keys_dir).parts[0]
            assert owner in services, f"{name} holds {path}"
