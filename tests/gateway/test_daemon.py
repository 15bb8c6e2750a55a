"""``sealflow gateway`` in-process: listens, reports ready, serves, and stops cleanly."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from gateway_testing import Issuer, free_port

from broker import BrokerSettings
from gateway import GatewaySettings
from gateway.daemon import serve

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


async def test_the_daemon_serves_the_api_reports_ready_and_stops(
    gateway_settings: GatewaySettings,
    broker_settings: BrokerSettings,
    issuer: Issuer,
    cleanup_namespace: None,
) -> None:
    settings = gateway_settings.model_copy(update={"port": 0, "health_port": free_port()})
    stop, started = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve(settings, broker_settings, stop=stop, started=started))
    try:
        async with asyncio.timeout(30):
            await started.wait()
        base = f"http://127.0.0.1:{settings.port}"
        async with aiohttp.ClientSession() as session:
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
    finally:
        stop.set()
        async with asyncio.timeout(30):
            await task
    assert task.exception() is None
