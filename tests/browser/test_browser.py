"""The browser experience in a real Chromium: sign in, upload two files and watch them finish
live, read a result, search, sign out for good; roles, CSRF and expiry; screenshots."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from browser_testing import dead_letters, sign_in
from pipeline_testing import daemons_for
from playwright.async_api import Browser, Page, expect
from web_testing import WebGateway

from broker import BrokerSettings

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.e2e,
    pytest.mark.timeout(180),
]

FIRST = b"# Harbour log\n\nThe lighthouse keeper counted forty ships and one stubborn whale.\n"
SECOND = b"name,tonnage\nAurora,1200\nBorealis,800\nlighthouse supply,40\n"


def _path(page: Page) -> str:
    parts = urlsplit(page.url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


async def _signed_in(page: Page, site: WebGateway, user: str) -> None:
    await page.goto(site.url + "/")
    async with page.expect_navigation():
        await page.click("a.button.primary >> text=Sign in")
    await sign_in(page, user)
    assert _path(page) == "/"


async def test_sign_in_upload_two_watch_them_finish_read_search_sign_out(
    page: Page,
    chromium: Browser,
    site: WebGateway,
    broker_settings: BrokerSettings,
    screenshots: Path,
) -> None:
    await page.goto(site.url + "/")
    await expect(page.locator("h1")).to_contain_text("Documents in")
    await page.screenshot(path=screenshots / "landing.png")

    await _signed_in(page, site, "alice")
    await expect(page.locator("#upload-form")).to_be_visible()
    await expect(page.locator("#live-status")).to_contain_text("Live")

    async with daemons_for(site.app, broker_settings):
        await page.evaluate("window.__sealflowNoReload = true")
        await page.set_input_files(
            "#file-input",
            [
                {"name": "harbour-log.md", "mimeType": "text/markdown", "buffer": FIRST},
                {"name": "fleet.csv", "mimeType": "text/csv", "buffer": SECOND},
            ],
        )
        await expect(page.locator(".upload-item.ok")).to_have_count(2, timeout=30_000)
        done = page.locator("#jobs-body tr .state-done")
        await expect(done).to_have_count(2, timeout=90_000)
        assert await page.evaluate("window.__sealflowNoReload === true"), "the page reloaded"
    await page.screenshot(path=screenshots / "jobs.png", full_page=True)

    phone_context = await chromium.new_context(
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        reduced_motion="reduce",
        storage_state=await page.context.storage_state(),
    )
    try:
        phone = await phone_context.new_page()
        await phone.goto(site.url + "/")
        await expect(phone.locator("#jobs-body tr .state-done")).to_have_count(2)
        width = await phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the phone layout scrolls sideways ({width}px)"
        await phone.screenshot(path=screenshots / "jobs-phone.png", full_page=True)
    finally:
        await phone_context.close()

    async with page.expect_navigation():
        await page.click("#jobs-body a >> text=harbour-log.md")
    await expect(page.locator("pre.text")).to_contain_text("stubborn whale")
    await expect(page.locator("#history-title")).to_be_visible()
    await expect(page.locator(".timeline li").first).to_be_visible()
    await page.screenshot(path=screenshots / "result.png", full_page=True)
    job_path = _path(page)

    async with page.expect_navigation():
        await page.click("nav >> text=Search")
    await page.fill("#q", "lighthouse")
    async with page.expect_navigation():
        await page.press("#q", "Enter")
    await expect(page.locator(".hit")).to_have_count(2)
    await expect(page.locator("mark").first).to_have_text("lighthouse", ignore_case=True)
    await page.screenshot(path=screenshots / "search.png", full_page=True)

    async with page.expect_navigation(url=lambda url: urlsplit(url).path == "/signed-out"):
        await page.click("button >> text=Sign out")
    await expect(page.locator("h1")).to_have_text("You are signed out")
    await page.go_back()
    await page.go_back()
    await expect(page.locator("#upload-form")).to_have_count(0)
    await expect(page.locator(".hit")).to_have_count(0)
    await page.goto(site.url + job_path)
    assert page.url.startswith(site.issuer.url + "/authorize"), page.url


async def test_a_viewer_sees_no_upload_form_and_its_upload_is_refused(
    page: Page, site: WebGateway
) -> None:
    await _signed_in(page, site, "vera")
    await expect(page.locator("h1")).to_have_text("Your jobs")
    await expect(page.locator("#upload-form")).to_have_count(0)
    # Keyboard: the first Tab reaches "Skip to content", the next ones the navigation.
    await page.keyboard.press("Tab")
    await expect(page.locator("a.skip")).to_be_focused()
    await page.keyboard.press("Tab")
    await page.keyboard.press("Tab")
    await expect(page.locator("nav a >> text=Jobs")).to_be_focused()
    status = await page.evaluate(
        """async () => {
            const data = new FormData();
            data.append("file", new Blob(["hello"], {type: "text/plain"}), "a.txt");
            const token = document.querySelector('meta[name="csrf-token"]').content;
            const r = await fetch("/web/api/jobs", {method: "POST", body: data,
                                                    headers: {"X-CSRF-Token": token}});
            return r.status;
        }"""
    )
    assert status == 403


async def test_a_non_admin_is_refused_the_admin_pages(page: Page, site: WebGateway) -> None:
    await _signed_in(page, site, "alice")
    await expect(page.locator("nav >> text=Audit log")).to_have_count(0)
    for path in ("/admin/audit", "/admin/dlq"):
        response = await page.goto(site.url + path)
        assert response is not None
        assert response.status == 403
        await expect(page.locator("h1")).to_have_text("You may not see this")


async def test_a_form_posted_without_the_csrf_token_is_refused(
    page: Page, site: WebGateway
) -> None:
    await _signed_in(page, site, "alice")
    async with page.expect_navigation():
        await page.evaluate(
            """() => {
                const form = document.createElement("form");
                form.method = "post";
                form.action = "/logout";
                document.body.append(form);
                form.submit();
            }"""
        )
    await expect(page.locator("h1")).to_have_text("You may not see this")
    await expect(page.locator("main")).to_contain_text("security token")
    await page.goto(site.url + "/")
    await expect(page.locator("h1")).to_have_text("Your jobs")  # still signed in


async def test_after_the_session_is_cleared_sign_in_returns_to_the_page(
    page: Page, site: WebGateway
) -> None:
    await _signed_in(page, site, "alice")
    await page.context.clear_cookies()
    await page.goto(site.url + "/search?q=whale")
    assert page.url.startswith(site.issuer.url + "/authorize"), page.url
    await sign_in(page, "alice")
    assert _path(page) == "/search?q=whale"
    await expect(page.locator("#q")).to_have_value("whale")


async def test_an_admin_tails_the_audit_log_and_replays_a_dead_letter(
    page: Page, site: WebGateway, broker_settings: BrokerSettings, screenshots: Path
) -> None:
    job_id = await dead_letters(site)
    async with daemons_for(site.app, broker_settings):
        await _signed_in(page, site, "root")
        async with page.expect_navigation():
            await page.click("nav >> text=Dead letters")
        rows = page.locator("table.dlq tbody tr")
        await expect(rows).to_have_count(2)
        await expect(page.locator("table.dlq")).to_contain_text("expired")
        await expect(page.locator("table.dlq")).to_contain_text("retries_exhausted")
        await page.screenshot(path=screenshots / "dlq.png", full_page=True)
        async with page.expect_navigation():
            await page.click("button >> text=Replay")
        await expect(page.locator(".notice").first).to_contain_text("re-sealed and published")
        await expect(rows).to_have_count(1)

        async with page.expect_navigation():
            await page.click("nav >> text=Audit log")
        await expect(page.locator("#live-status")).to_contain_text("Live tail", timeout=15_000)
        await expect(page.locator("#audit-body")).to_contain_text("dlq.replayed", timeout=30_000)
        await expect(page.locator("#audit-body")).to_contain_text("job.completed", timeout=60_000)
        await page.screenshot(path=screenshots / "audit.png", full_page=True)

        await page.goto(f"{site.url}/admin/audit?job={job_id}")
        await expect(page.locator("#audit-body tr").first).to_be_visible()
        await expect(page.locator("#f-job")).to_have_value(job_id)
