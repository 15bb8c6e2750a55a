"""Browser tests: Playwright driving the system Chromium against the identity, a gateway
serving pages, and (where a test asks) the worker, parser and audit daemons on a real broker.

Chromium is Debian's (``apt-get install -y chromium``: ``/usr/bin/chromium``, or
``SEALFLOW_CHROMIUM``); Playwright's own browser download is never used. Screenshots go to
``SEALFLOW_TEST_OUTPUT`` (default ``var/test-output``) under ``screenshots/``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright
from web_testing import WebGateway

REPO = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    configured = os.environ.get("SEALFLOW_CHROMIUM")
    found = configured or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(found).exists():
        pytest.fail(
            f"no Chromium at {found}: install Debian's with `apt-get install -y chromium` "
            "(or set SEALFLOW_CHROMIUM)",
            pytrace=False,
        )
    return found


@pytest.fixture(scope="session")
def screenshots() -> Path:
    base = Path(os.environ.get("SEALFLOW_TEST_OUTPUT", REPO / "var" / "test-output"))
    directory = base / "screenshots"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def page(chromium: Browser, site: WebGateway) -> AsyncIterator[Page]:
    """A fresh browser context on ``site``, closed before the site stops: a page left with an
    open event stream would otherwise hold the gateway's shutdown for its whole timeout."""
    context = await chromium.new_context(
        viewport={"width": 1280, "height": 860}, reduced_motion="reduce"
    )
    context.set_default_timeout(20_000)
    try:
        yield await context.new_page()
    finally:
        await context.close()
