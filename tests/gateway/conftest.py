"""Gateway fixtures: the real identity provider as issuer, a gateway on a real broker, the
worker, parser and audit daemons in-process (helpers in ``tests/support/gateway_testing.py``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from gateway_testing import AUDIENCE, Gateway, Issuer, free_port
from store_testing import postgres_url as postgres_url  # the session fixture, registered here
from store_testing import reset_postgres
from yarl import URL

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
        audit_url=f"http://127.0.0.1:{free_port()}",
        audit_timeout=5.0,
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


@contextlib.asynccontextmanager
async def _daemons(
    gateway: Gateway, queues: tuple[str, ...], start: Callable[[asyncio.Event], list[Coroutine]]
) -> AsyncIterator[None]:
    """Run the daemons ``start`` makes until the test ends, once they consume ``queues``."""
    from sealflow_testing import queue_counts

    stop = asyncio.Event()
    daemons = [asyncio.create_task(daemon) for daemon in start(stop)]
    runtime = gateway.app[RUNTIME_KEY]
    assert runtime.consume_channel is not None
    try:
        async with asyncio.timeout(60):
            for queue in queues:
                name = runtime.topology.queue(queue)
                while (await queue_counts(runtime.consume_channel, name))[1] == 0:
                    for task in daemons:
                        if task.done():
                            task.result()
                    await asyncio.sleep(0.05)
        yield
    finally:
        stop.set()
        results = await asyncio.gather(*daemons, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result


@pytest.fixture
async def audit_daemon(
    broker_settings: BrokerSettings, gateway: Gateway, tmp_path: Path
) -> AsyncIterator[None]:
    """The audit daemon, in-process, serving its query API where the gateway reads the log.

    It has a data directory of its own, as on another host: the gateway cannot read its files.
    """
    from audit import AuditSettings
    from audit.daemon import AuditDaemonSettings
    from audit.daemon import serve as serve_audit

    data_dir = tmp_path / "audit-host"
    data_dir.mkdir()
    settings = broker_settings.model_copy(update={"data_dir": data_dir})
    api_port = URL(gateway.settings.audit_url).port or 0

    def start(stop: asyncio.Event) -> list[Coroutine]:
        return [
            serve_audit(
                settings,
                AuditDaemonSettings(health_port=0, api_port=api_port, batch_wait=0.001),
                AuditSettings(data_dir=settings.data_dir, keys_dir=settings.keys_dir),
                stop=stop,
            )
        ]

    async with _daemons(gateway, ("audit.events",), start):
        yield


@pytest.fixture
async def pipeline(
    broker_settings: BrokerSettings, gateway: Gateway, audit_daemon: None
) -> AsyncIterator[None]:
    """The parser and worker daemons (and the audit daemon), in-process, on the gateway's
    namespace."""
    from parser.daemon import ParserSettings
    from parser.daemon import serve as serve_parser
    from workers import WorkerSettings
    from workers import serve as serve_worker

    settings = broker_settings

    def start(stop: asyncio.Event) -> list[Coroutine]:
        return [
            serve_parser(settings, ParserSettings(health_port=0, timeout_seconds=15), stop=stop),
            serve_worker(settings, WorkerSettings(health_port=0), stop=stop),
        ]

    async with _daemons(gateway, ("worker.jobs", "parser.requests"), start):
        yield
