"""Fixtures shared by the test folders (a pytest plugin, loaded by ``tests/conftest.py``):
a data directory, broker settings on the test's namespace, the identity provider as issuer,
a gateway in this process (an API client's, or a browser's on a known port), and the
consuming daemons in this process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from gateway_testing import (
    Gateway,
    Issuer,
    audit_api_port,
    gateway_settings_for,
    identity_server,
)
from pipeline_testing import in_process_daemons
from store_testing import postgres_url as postgres_url  # the session fixture, registered here
from store_testing import reset_postgres
from web_testing import WebGateway, web_gateway

from broker import BrokerSettings
from gateway import RUNTIME_KEY, GatewaySettings, create_app


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """The services' shared data directory (store, blobs, audit log, journals)."""
    directory = tmp_path / "data"
    directory.mkdir(exist_ok=True)
    return directory


@pytest.fixture
def broker_settings(
    request: pytest.FixtureRequest, amqp_url: str, namespace: str, data_dir: Path, keys_dir: Path
) -> BrokerSettings:
    """The test's broker, namespace, data and keys, with quick retries and a short grace; the
    embedded store, or PostgreSQL when parametrized "postgresql" (indirect)."""
    database_url: str | None = None
    if getattr(request, "param", "sqlite") == "postgresql":
        database_url = request.getfixturevalue("postgres_url")
        reset_postgres(database_url)
    return BrokerSettings(
        database_url=database_url,
        amqp_url=amqp_url,
        namespace=namespace,
        data_dir=data_dir,
        keys_dir=keys_dir,
        retry_base_delay=0.05,
        max_attempts=3,
        shutdown_grace=10,
    )


@pytest.fixture
async def issuer(keys_dir: Path, tmp_path: Path) -> AsyncIterator[Issuer]:
    """The real identity provider on a localhost port, with the test users."""
    async with identity_server(keys_dir, tmp_path / "identity") as running:
        yield running


@pytest.fixture
def gateway_settings(issuer: Issuer, broker_settings: BrokerSettings) -> GatewaySettings:
    """The gateway's test settings, trusting ``issuer`` (override to change one)."""
    return gateway_settings_for(issuer, broker_settings)


@pytest.fixture
async def gateway(
    gateway_settings: GatewaySettings,
    broker_settings: BrokerSettings,
    issuer: Issuer,
    cleanup_namespace: None,
) -> AsyncIterator[Gateway]:
    """The gateway app in this process, with its own broker runtime, and a client for it."""
    app = create_app(gateway_settings, broker_settings=broker_settings)
    async with TestClient(TestServer(app)) as client:
        yield Gateway(client=client, settings=gateway_settings, issuer=issuer)


@pytest.fixture
async def audit_daemon(
    broker_settings: BrokerSettings, gateway: Gateway, tmp_path: Path
) -> AsyncIterator[None]:
    """The audit daemon, in-process, serving its query API where the gateway reads the log.

    It has a data directory of its own, as on another host: the gateway cannot read its files.
    """
    data_dir = tmp_path / "audit-host"
    data_dir.mkdir()
    async with in_process_daemons(
        broker_settings.model_copy(update={"data_dir": data_dir}),
        gateway.app[RUNTIME_KEY].consume_channel,
        services=("audit",),
        audit_api_port=audit_api_port(gateway.settings),
    ):
        yield


@pytest.fixture
async def pipeline(
    broker_settings: BrokerSettings, gateway: Gateway, audit_daemon: None
) -> AsyncIterator[None]:
    """The parser and worker daemons (and the audit daemon), in-process, on the gateway's
    namespace."""
    async with in_process_daemons(
        broker_settings, gateway.app[RUNTIME_KEY].consume_channel, services=("parser", "worker")
    ):
        yield


@pytest.fixture
async def site(
    issuer: Issuer,
    broker_settings: BrokerSettings,
    cleanup_namespace: None,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[WebGateway]:
    """The gateway serving pages on a known port, its browser client registered at ``issuer``."""
    async with web_gateway(issuer, broker_settings, monkeypatch) as gateway:
        yield gateway
