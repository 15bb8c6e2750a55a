"""Fixtures of the browser side: cookie-keeping HTTP browsers signed in through the forms on
the shared ``site`` (a gateway serving pages, ``tests/support/pipeline_fixtures.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from web_testing import Browser, WebGateway, browser


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
