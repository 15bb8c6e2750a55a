"""The one health listener: it binds where ``SEALFLOW_HEALTH_HOST`` says, answers /healthz,
/readyz (by the caller's readiness rule) and /metrics, and every runtime daemon uses it."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import aiohttp
import pytest

from broker import BrokerSettings, ServiceRuntime
from broker.health import serve_health

OTHER_LOOPBACK = "127.0.0.2"
"""A loopback address that is not 127.0.0.1: a listener there is not reachable at 127.0.0.1."""


def test_the_health_host_is_loopback_unless_the_environment_says_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """127.0.0.1 by default; ``SEALFLOW_HEALTH_HOST`` (0.0.0.0 in the containers) overrides."""
    monkeypatch.delenv("SEALFLOW_HEALTH_HOST", raising=False)
    assert BrokerSettings().health_host == "127.0.0.1"
    monkeypatch.setenv("SEALFLOW_HEALTH_HOST", "0.0.0.0")
    assert BrokerSettings().health_host == "0.0.0.0"


def _free_port(host: str) -> int:
    """A port nothing listens on at ``host`` right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


async def _refused(url: str) -> bool:
    """True when nothing listens at ``url``."""
    try:
        async with aiohttp.ClientSession() as session, session.get(url):
            return False
    except aiohttp.ClientConnectorError:
        return True


async def test_it_listens_on_the_given_host_only_and_reports_the_readiness_rule() -> None:
    """Bound to 127.0.0.2: answers there, refused at 127.0.0.1; /readyz follows ``ready``."""
    ready = False
    runner = await serve_health(
        "worker", OTHER_LOOPBACK, 0, ready=lambda: ready, details=lambda: {"extra": 1}
    )
    try:
        port = int(runner.addresses[0][1])
        base = f"http://{OTHER_LOOPBACK}:{port}"
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/healthz") as response:
                assert response.status == 200
                assert await response.json() == {"status": "ok", "service": "worker"}
            async with session.get(f"{base}/readyz") as response:
                assert response.status == 503
                assert await response.json() == {
                    "status": "not_ready",
                    "service": "worker",
                    "extra": 1,
                }
            ready = True
            async with session.get(f"{base}/readyz") as response:
                assert response.status == 200
            async with session.get(f"{base}/metrics") as response:
                assert response.status == 200
        assert await _refused(f"http://127.0.0.1:{port}/healthz")
    finally:
        await runner.cleanup()


@pytest.mark.integration
async def test_a_runtime_daemon_serves_health_on_the_configured_host(
    amqp_url: str, namespace: str, keys_dir: Path, tmp_path: Path, cleanup_namespace: None
) -> None:
    """``ServiceRuntime.run`` takes the host from ``BrokerSettings.health_host``."""
    settings = BrokerSettings(
        amqp_url=amqp_url,
        namespace=namespace,
        data_dir=tmp_path / "data",
        keys_dir=keys_dir,
        health_host=OTHER_LOOPBACK,
    )
    runtime = ServiceRuntime("worker", settings)
    set_up = asyncio.Event()

    async def setup(_: ServiceRuntime) -> None:
        set_up.set()

    port = _free_port(OTHER_LOOPBACK)
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run(setup, health_port=port, stop=stop))
    try:
        async with asyncio.timeout(30):
            await set_up.wait()
        url = f"http://{OTHER_LOOPBACK}:{port}/healthz"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            assert response.status == 200
        assert await _refused(f"http://127.0.0.1:{port}/healthz")
    finally:
        stop.set()
        async with asyncio.timeout(30):
            await task
