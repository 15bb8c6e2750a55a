"""Swagger UI at /docs, in a real browser: authorize with a bearer token and call a route."""

from __future__ import annotations

from pathlib import Path

import pytest
from gateway_testing import Issuer
from playwright.async_api import Page
from web_testing import WebGateway

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(180)]


async def _authorize(page: Page, token: str) -> None:
    await page.click("button.authorize")
    bearer = page.locator(".auth-container", has_text="bearerAuth")
    await bearer.locator("input").first.fill(token)
    await bearer.locator("button.authorize").click()
    await page.locator(".modal-ux button.btn-done").first.click()


async def _call(page: Page, method: str, path: str) -> str:
    """Expand one operation, try it out, execute it, and return the live response's status."""
    block = page.locator(f".opblock-{method}", has=page.locator(f'[data-path="{path}"]')).first
    await block.locator(".opblock-summary-path").first.click()
    await block.locator(".opblock-body").wait_for()
    # /docs opens operations ready to try (tryItOutEnabled): Execute is there at once.
    await block.get_by_role("button", name="Execute").click()
    status = block.locator(".live-responses-table tbody .response-col_status").first
    await status.wait_for()
    return (await status.inner_text()).strip()


async def test_docs_authorize_with_a_bearer_token_and_call_the_api(
    site: WebGateway, issuer: Issuer, page: Page, screenshots: Path
) -> None:
    token = issuer.token("alice", "user")
    await page.goto(f"{site.url}/docs")
    await page.wait_for_selector(".swagger-ui .info .title")

    # Without a token the API refuses; with the one pasted into Authorize it answers.
    assert await _call(page, "get", "/api/jobs") == "401"
    await page.goto(f"{site.url}/docs")
    await page.wait_for_selector(".swagger-ui .info .title")
    await _authorize(page, token)
    assert await _call(page, "get", "/api/jobs") == "200"
    curl = await page.locator(".curl-command").first.inner_text()
    assert "Authorization: Bearer" in curl
    await page.screenshot(path=str(screenshots / "swagger-authorized.png"), full_page=False)
