"""Gateway fixtures: the real identity provider as issuer, a gateway on a real broker, the
worker, parser and audit daemons in-process (helpers in ``tests/support/gateway_testing.py``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from gateway_testing import AUDIENCE, Gateway, Issuer, free_port
from store_testing import postgres_url as postgres_url  # the session fixture, registered here
from store_testing import reset_postgres

from broker import BrokerSettings
from gateway import RUNTIME_KEY, GatewaySettings, create_app
from identity import IdentitySettings
from identity import create_app as create_identity_app


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


@pytest.fixture
def broker_settings(
    request: pytest.FixtureRequest, amqp_url: str, namespace: str, keys_dir: Path, tmp_path: Path
) -> BrokerSettings:
    """The embedded store, or PostgreSQL when parametrized "postgresql" (indirect)."""
    data_dir = tmp_path / "data"
    data_dir.mkdir(exist_ok=True)
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
def gateway_settings(issuer: Issuer, broker_settings: BrokerSettings) -> GatewaySettings:
    return GatewaySettings(
        issuer=issuer.url,
        api_audience=AUDIENCE,
        data_dir=broker_settings.data_dir,
        keys_dir=broker_settings.keys_dir,
        database_url=broker_settings.database_url,
        max_upload_bytes=64 * 1024,
        max_request_bytes=256 * 1024,
        max_files_per_upload=8,
        jwks_refetch_interval=0.0,
        sse_heartbeat_seconds=1.0,
        sse_poll_seconds=1.0,
    )


@pytest.fixture
async def gateway(
    gateway_settings: GatewaySettings,
    broker_settings: BrokerSettings,
    issuer: Issuer,
    cleanup_namespace: None,
) -> AsyncIterator[Gateway]:
    app = create_app(gateway_settings, broker_settings=broker_settings)
    async with TestClient(TestServer(app)) as client:
        yield Gateway(client=client, settings=gateway_settings, issuer=issuer)


@pytest.fixture
async def pipeline(broker_settings: BrokerSettings, gateway: Gateway) -> AsyncIterator[None]:
    """The audit, parser and worker daemons, in-process, on the gateway's namespace."""
    from sealflow_testing import queue_counts

    from audit import AuditSettings
    from audit.daemon import AuditDaemonSettings
    from audit.daemon import serve as serve_audit
    from parser.daemon import ParserSettings
    from parser.daemon import serve as serve_parser
    from workers import WorkerSettings
    from workers import serve as serve_worker

    stop = asyncio.Event()
    settings = broker_settings
    daemons = [
        asyncio.create_task(
            serve_audit(
                settings,
                AuditDaemonSettings(health_port=0, batch_wait=0.001),
                AuditSettings(data_dir=settings.data_dir, keys_dir=settings.keys_dir),
                stop=stop,
            )
        ),
        asyncio.create_task(
            serve_parser(settings, ParserSettings(health_port=0, timeout_seconds=15), stop=stop)
        ),
        asyncio.create_task(serve_worker(settings, WorkerSettings(health_port=0), stop=stop)),
    ]
    runtime = gateway.app[RUNTIME_KEY]
    assert runtime.consume_channel is not None
    async with asyncio.timeout(60):
        for queue in ("worker.jobs", "parser.requests", "audit.events"):
            name = runtime.topology.queue(queue)
            while (await queue_counts(runtime.consume_channel, name))[1] == 0:
                for task in daemons:
                    if task.done():
                        task.result()
                await asyncio.sleep(0.05)
    try:
        yield
    finally:
        stop.set()
        results = await asyncio.gather(*daemons, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
