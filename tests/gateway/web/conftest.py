"""Fixtures of the browser side: the identity with test users, a gateway serving pages on a
known port (on a real broker), and cookie-keeping HTTP browsers signed in through the forms."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from gateway_testing import Issuer
from web_testing import Browser, WebGateway, browser, web_gateway

from broker import BrokerSettings


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


@pytest.fixture
async def anonymous(site: WebGateway) -> AsyncIterator[Browser]:
    async with browser(site) as client:
        yield client


async def _signed_in(site: WebGateway, user: str) -> AsyncIterator[Browser]:
    async with browser(site) as client:
        page = await client.sign_in(user)
        assert page.status == 200, await page.text()
        yield client


@pytest.fixture
async def alice(site: WebGateway) -> AsyncIterator[Browser]:
    async for client in _signed_in(site, "alice"):
        yield client


@pytest.fixture
async def vera(site: WebGateway) -> AsyncIterator[Browser]:
    async for client in _signed_in(site, "vera"):
        yield client


@pytest.fixture
async def root(site: WebGateway) -> AsyncIterator[Browser]:
    async for client in _signed_in(site, "root"):
        yield client
