"""Fault fixtures: daemons as subprocesses on a fresh namespace and a bus to submit jobs on.

The in-process gateway on the same data (with the real identity provider as issuer) is the
shared ``gateway`` fixture of ``tests/support/pipeline_fixtures.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from daemon_processes import Daemons, daemon_env
from faults_testing import JobLedger

from broker import BrokerSettings, Publisher, Sealer, Topology, connect, open_channel
from keys import KeyRing
from store import SqliteJobStore

QUICK = {
    "SEALFLOW_AUDIT_BATCH_WAIT": "0.001",
    "SEALFLOW_CHECKPOINT_EVERY": "5",
    "SEALFLOW_RETRY_BASE_DELAY": "0.05",
    "SEALFLOW_MAX_ATTEMPTS": "3",
    "SEALFLOW_SHUTDOWN_GRACE": "10",
}
"""Settings that make a fault test quick: audits flushed and checkpointed often, fast retries."""

ENVELOPE_LIFETIME = 5
"""The shortest lifetime ``BrokerSettings`` allows: backlogs go stale quickly."""


@pytest.fixture
def env(amqp_url: str, namespace: str, data_dir: Path, keys_dir: Path) -> dict[str, str]:
    """The daemons' environment: this test's namespace and dirs, quick retries and audits."""
    return daemon_env(amqp_url, namespace, data_dir, keys_dir, **QUICK)


@pytest.fixture
def daemons(env: dict[str, str], cleanup_namespace: None) -> Iterator[Daemons]:
    """The test's daemons; whatever still runs at the end is killed."""
    started = Daemons(env)
    try:
        yield started
    finally:
        started.kill_leftovers()


@pytest.fixture
async def bus(
    broker_settings: BrokerSettings, keys_dir: Path, data_dir: Path, cleanup_namespace: None
) -> AsyncIterator[JobLedger]:
    """A connection of the test's own that publishes as the gateway, and the shared job store."""
    connection = await connect(broker_settings.amqp_url)
    channel = await open_channel(connection)
    topology = Topology(broker_settings.namespace)
    await topology.declare(channel)
    sealer = Sealer(KeyRing.load(keys_dir, "gateway").signing_key())
    store = await SqliteJobStore.open(data_dir / "jobs.db")
    try:
        yield JobLedger(data_dir, Publisher(channel, topology, sealer), store)
    finally:
        await store.close()
        await connection.close()
