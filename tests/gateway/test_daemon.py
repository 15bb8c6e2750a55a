"""``sealflow gateway`` in-process: listens, reports ready, serves, and stops cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from gateway_testing import Issuer, free_port

from broker import BrokerSettings
from gateway import GatewaySettings
from gateway.daemon import serve

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@contextlib.asynccontextmanager
async def _serving(
    settings: GatewaySettings, broker_settings: BrokerSettings
) -> AsyncIterator[int]:
    """``gateway.daemon.serve`` in this process on a free port, until the block ends."""
    settings = settings.model_copy(update={"port": 0, "health_port": free_port()})
    stop, started = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve(settings, broker_settings, stop=stop, started=started))
    try:
        async with asyncio.timeout(30):
            await started.wait()
        yield settings
    finally:
        stop.set()
        async with asyncio.timeout(30):
            await task
    assert task.exception() is None


async def test_the_daemon_serves_the_api_reports_ready_and_stops(
    gateway_settings: GatewaySettings,
    broker_settings: BrokerSettings,
    issuer: Issuer,
    cleanup_namespace: None,
) -> None:
    serving = _serving(gateway_settings, broker_settings)
    async with serving as settings, aiohttp.ClientSession() as session:
        base = f"http://127.0.0.1:{settings.port}"
        async with session.get(f"{base}/api/health") as response:
            assert response.status == 200
            assert await response.json() == {"status": "ok"}
        headers = {"Authorization": f"Bearer {issuer.token('alice', 'user')}"}
        async with session.get(f"{base}/api/jobs", headers=headers) as response:
            assert response.status == 200
        ready = f"http://127.0.0.1:{settings.health_port}/readyz"
        async with asyncio.timeout(30):
            while True:
                async with session.get(ready) as response:
                    if response.status == 200:
                        break
                await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def _gateway_process(
    amqp_url: str, namespace: str, keys_dir: Path, data_dir: Path, issuer: Issuer
) -> AsyncIterator[tuple[asyncio.subprocess.Process, int]]:
    """``sealflow gateway`` as a process, once it logs that it listens; its stderr is piped."""
    port = free_port()
    env = dict(os.environ)
    env.update(
        SEALFLOW_AMQP_URL=amqp_url,
        SEALFLOW_NAMESPACE=namespace,
        SEALFLOW_DATA_DIR=str(data_dir),
        SEALFLOW_KEYS_DIR=str(keys_dir),
        SEALFLOW_ISSUER=issuer.url,
        SEALFLOW_GATEWAY_PORT=str(port),
        SEALFLOW_GATEWAY_HEALTH_PORT="0",
        NO_COLOR="1",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sealflow",
        "gateway",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    try:
        async with asyncio.timeout(45):
            while b'"gateway.listening"' not in await process.stderr.readline():
                assert process.returncode is None
        yield process, port
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _stop(process: asyncio.subprocess.Process) -> bytes:
    """SIGTERM, then the rest of its stderr once it has exited cleanly."""
    assert process.stderr is not None
    process.send_signal(signal.SIGTERM)
    async with asyncio.timeout(30):
        rest = await process.stderr.read()
        assert await process.wait() == 0
    return rest


async def test_sealflow_gateway_as_a_process_stops_cleanly_on_sigterm(
    amqp_url: str,
    namespace: str,
    keys_dir: Path,
    tmp_path: Path,
    issuer: Issuer,
    cleanup_namespace: None,
) -> None:
    gateway = _gateway_process(amqp_url, namespace, keys_dir, tmp_path / "var", issuer)
    async with gateway as (process, port):
        headers = {"Authorization": f"Bearer {issuer.token('alice', 'user')}"}
        url = f"http://127.0.0.1:{port}/api/jobs"
        async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as r:
            assert r.status == 200
        await _stop(process)


async def test_sockets_that_never_finish_their_request_head_are_closed(
    gateway_settings: GatewaySettings,
    broker_settings: BrokerSettings,
    cleanup_namespace: None,
) -> None:
    """The review held twelve sockets open with unfinished request headers for over 10 s."""
    slow_headers = gateway_settings.model_copy(update={"header_timeout": 0.5})
    async with _serving(slow_headers, broker_settings) as settings:
        port = settings.port
        sockets = [await asyncio.open_connection("127.0.0.1", port) for _ in range(12)]
        for _, writer in sockets:
            writer.write(b"GET /api/health HTTP/1.1\r\nHost: gateway\r\nX-Slow: ")
            await writer.drain()
        for _, writer in sockets:
            writer.write(b"a")  # trickling bytes does not buy time
            await writer.drain()
        async with asyncio.timeout(5):
            for reader, writer in sockets:
                assert await reader.read() == b""  # closed by the server, nothing answered
                writer.close()
        url = f"http://127.0.0.1:{port}/api/health"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            assert response.status == 200  # a prompt client is served as before


async def test_a_request_header_over_the_limit_is_logged_as_one_json_line(
    amqp_url: str,
    namespace: str,
    keys_dir: Path,
    tmp_path: Path,
    issuer: Issuer,
    cleanup_namespace: None,
) -> None:
    """A header over 8,190 bytes made aiohttp log a plain-text multi-line traceback."""
    gateway = _gateway_process(amqp_url, namespace, keys_dir, tmp_path / "var", issuer)
    async with gateway as (process, port):
        huge = {"X-Padding": "a" * 9000}
        url = f"http://127.0.0.1:{port}/api/health"
        async with aiohttp.ClientSession() as session, session.get(url, headers=huge) as r:
            assert r.status == 400
        rest = await _stop(process)
    lines = [line for line in rest.decode().splitlines() if line.strip()]
    for line in lines:
        assert isinstance(json.loads(line), dict), line  # every line is one JSON object
    [refused] = [line for line in lines if "bad_request" in line]
    assert len(refused) < 500  # one short line, not a traceback
    assert json.loads(refused)["level"] == "info"
    assert "exception" not in json.loads(refused)
