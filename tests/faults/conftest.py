"""Fault fixtures: daemons as subprocesses on a fresh namespace, a bus to submit jobs on, and
an in-process gateway (with the real identity provider as issuer) on the same data."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from faults_testing import Daemons, JobLedger, daemon_env
from gateway_testing import AUDIENCE, Gateway, Issuer, free_port

from broker import BrokerSettings, Publisher, Sealer, Topology, connect, open_channel
from gateway import GatewaySettings, create_app
from identity import IdentitySettings
from identity import create_app as create_identity_app
from keys import KeyRing
from store import SqliteJobStore

ENVELOPE_LIFETIME = 5
"""The shortest lifetime ``BrokerSettings`` allows: backlogs go stale quickly."""


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "data"
    directory.mkdir()
    return directory


@pytest.fixture
def env(amqp_url: str, namespace: str, data_dir: Path, keys_dir: Path) -> dict[str, str]:
    return daemon_env(amqp_url, namespace, data_dir, keys_dir)


@pytest.fixture
def daemons(env: dict[str, str], cleanup_namespace: None) -> Iterator[Daemons]:
    started = Daemons(env)
    try:
        yield started
    finally:
        started.kill_leftovers()


@pytest.fixture
def broker_settings(
    amqp_url: str, namespace: str, data_dir: Path, keys_dir: Path
) -> BrokerSettings:
    return BrokerSettings(
        amqp_url=amqp_url,
        namespace=namespace,
        data_dir=data_dir,
        keys_dir=keys_dir,
        retry_base_delay=0.05,
        max_attempts=3,
        shutdown_grace=10,
    )


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


@pytest.fixture
async def issuer(keys_dir: Path, tmp_path: Path) -> AsyncIterator[Issuer]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = IdentitySettings(
        issuer=url, data_dir=tmp_path / "identity", keys_dir=keys_dir, api_audience=AUDIENCE
    )
    server = TestServer(create_identity_app(settings), host="127.0.0.1", port=port)
    await server.start_server()
    try:
        yield Issuer(url=url, keys_dir=keys_dir, server=server)
    finally:
        await server.close()


def gateway_settings_for(issuer: Issuer, broker_settings: BrokerSettings) -> GatewaySettings:
    return GatewaySettings(
        issuer=issuer.url,
        api_audience=AUDIENCE,
        data_dir=broker_settings.data_dir,
        keys_dir=broker_settings.keys_dir,
        max_upload_bytes=64 * 1024,
        jwks_refetch_interval=0.0,
        sse_heartbeat_seconds=1.0,
        sse_poll_seconds=1.0,
    )


@pytest.fixture
async def gateway(
    issuer: Issuer, broker_settings: BrokerSettings, cleanup_namespace: None
) -> AsyncIterator[Gateway]:
    """The gateway app in this process (its own broker runtime) on the daemons' data dir."""
    settings = gateway_settings_for(issuer, broker_settings)
    app = create_app(settings, broker_settings=broker_settings)
    async with TestClient(TestServer(app)) as client:
        yield Gateway(client=client, settings=settings, issuer=issuer)
