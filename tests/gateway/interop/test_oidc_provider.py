"""A real external OpenID provider as the issuer: panva's ``oidc-provider`` (npm) issues RFC
9068 JWT access tokens for the gateway's audience — by client credentials, to the gateway's
browser sign-in (code + PKCE) and to ``sealflow login`` (device flow) — and each uploads.

The provider's packages are installed by ``make install`` (pinned by
``provider/package-lock.json``) under the environment; when they are missing the fixture runs
the same ``npm ci``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import re
import secrets
import shutil
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from urllib.parse import urljoin

import aiohttp
import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner
from gateway_testing import AUDIENCE, listening_socket, serve_on, url_of
from structlog_testing import logs_to_real_stderr

from broker import BrokerSettings
from gateway import STORE_KEY, GatewaySettings, create_app
from gateway.web import WEB_CLIENT_ID
from sealflow.cli import cli

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

PROVIDER_SOURCE = Path(__file__).parent / "provider"
PROVIDER_CACHE = Path(sys.prefix) / "share" / "sealflow" / "oidc-provider"
RESOURCE = "https://gateway.sealflow.test/"
CLIENT_ID = "sealflow-interop"
CLI_CLIENT_ID = "sealflow-cli"
USER = "ada"
_FORM = re.compile(r'<form[^>]*action="([^"]+)"[^>]*>(.*?)</form>', re.DOTALL)
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"\s*/?>')


@dataclass
class ExternalProvider:
    """The running ``oidc-provider`` and its confidential client."""

    issuer: str
    client_secret: str

    async def client_credentials_token(self, scope: str = "jobs:read jobs:write") -> str:
        """An access token from the provider's /token (client_secret_post, a resource)."""
        form = {
            "grant_type": "client_credentials",
            "scope": scope,
            "resource": RESOURCE,
            "client_id": CLIENT_ID,
            "client_secret": self.client_secret,
        }
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{self.issuer}/token", data=form) as response,
        ):
            assert response.status == 200, await response.text()
            body = await response.json()
        return str(body["access_token"])


async def _ensure_installed() -> Path:
    """``node_modules`` of the pinned provider (``npm ci`` as ``make install`` runs it)."""
    modules = PROVIDER_CACHE / "node_modules"
    if not (modules / "oidc-provider" / "package.json").exists():
        PROVIDER_CACHE.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(PROVIDER_SOURCE / name, PROVIDER_CACHE / name)
        npm = await asyncio.create_subprocess_exec(
            "npm", "ci", "--no-audit", "--no-fund", "--silent", cwd=PROVIDER_CACHE
        )
        assert await asyncio.wait_for(npm.wait(), 240) == 0, "npm ci of oidc-provider failed"
    return modules


@pytest.fixture
def gateway_socket() -> Iterator[socket.socket]:
    """The gateway's listening socket, bound before the provider starts: the provider registers
    ``{its URL}/callback`` as the browser client's redirect URI."""
    sock = listening_socket()
    try:
        yield sock
    finally:
        sock.close()


@pytest.fixture
async def external_provider(
    tmp_path: Path, gateway_socket: socket.socket
) -> AsyncIterator[ExternalProvider]:
    """``oidc-provider`` started on a free port; stopped when the test ends."""
    if shutil.which("node") is None:
        pytest.fail("node is needed for the external provider tests (Node 20 or later)")
    modules = await _ensure_installed()
    workdir = tmp_path / "provider"
    workdir.mkdir()
    shutil.copyfile(PROVIDER_SOURCE / "server.mjs", workdir / "server.mjs")
    (workdir / "node_modules").symlink_to(modules, target_is_directory=True)
    secret = secrets.token_urlsafe(24)
    env = {**os.environ, "INTEROP_CLIENT_SECRET": secret, "INTEROP_AUDIENCE": AUDIENCE}
    env["INTEROP_RESOURCE"] = RESOURCE
    env["INTEROP_WEB_CLIENT_ID"] = WEB_CLIENT_ID
    env["INTEROP_WEB_REDIRECT_URI"] = f"{url_of(gateway_socket)}/callback"
    env["INTEROP_CLI_CLIENT_ID"] = CLI_CLIENT_ID
    process = await asyncio.create_subprocess_exec(
        "node",
        "server.mjs",
        cwd=workdir,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        assert line, "oidc-provider exited before listening"
        yield ExternalProvider(issuer=json.loads(line)["issuer"], client_secret=secret)
    finally:
        if process.returncode is None:
            process.terminate()
        await asyncio.wait_for(process.wait(), 10)


async def sign_in_at_provider(
    session: aiohttp.ClientSession, response: aiohttp.ClientResponse, stop_at: str
) -> aiohttp.ClientResponse:
    """Walk the provider's pages from ``response`` as a user: follow redirects, submit each form
    (its hidden fields, and ``USER`` where it asks for a login — the development interactions
    take any login and password), until a redirect to ``stop_at`` (returned, not followed) or a
    page without a form (returned)."""
    for _ in range(20):
        if response.status in {302, 303}:
            location = urljoin(str(response.url), response.headers["Location"])
            response.release()
            response = await session.get(location, allow_redirects=False)
            if location.startswith(stop_at):
                return response
            continue
        assert response.status == 200, await response.text()
        html = await response.text()
        form = _FORM.search(html)
        if form is None:
            return response
        fields = {unescape(n): unescape(v) for n, v in _HIDDEN.findall(form.group(2))}
        if 'name="login"' in form.group(2):
            fields.update({"login": USER, "password": "any password"})
        action = urljoin(str(response.url), unescape(form.group(1)))
        response = await session.post(action, data=fields, allow_redirects=False)
    raise AssertionError("the provider's sign-in did not end")


def _upload_form() -> FormData:
    form = FormData()
    form.add_field("file", b"hello harbour", filename="notes.txt", content_type="text/plain")
    return form


async def test_browser_signs_in_at_oidc_provider_and_uploads(
    external_provider: ExternalProvider,
    gateway_socket: socket.socket,
    gateway_settings: GatewaySettings,
    broker_settings: BrokerSettings,
    cleanup_namespace: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """/login sends the browser to oidc-provider (code + PKCE as ``sealflow-web``); after the
    provider's login and consent forms, /callback starts a session for the provider's user,
    whose upload through the page API is accepted and owned by that user."""
    gateway_url = url_of(gateway_socket)
    monkeypatch.setenv("SEALFLOW_GATEWAY_URL", gateway_url)
    monkeypatch.delenv("SEALFLOW_WEB_CLIENT_SECRET", raising=False)
    monkeypatch.delenv("SEALFLOW_SESSION_SECRET", raising=False)
    settings = gateway_settings.model_copy(update={"issuer": external_provider.issuer})
    app = create_app(settings, broker_settings=broker_settings)
    server = serve_on(app, gateway_socket)
    await server.start_server()
    try:
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as browser:
            start = await browser.get(f"{gateway_url}/login", allow_redirects=False)
            assert start.status == 303, await start.text()
            assert start.headers["Location"].startswith(f"{external_provider.issuer}/auth?")
            callback = await sign_in_at_provider(browser, start, f"{gateway_url}/callback")
            assert callback.status == 303, await callback.text()
            home = await browser.get(urljoin(gateway_url, callback.headers["Location"]))
            html = await home.text()
            assert home.status == 200, html
            token = re.search(r'<meta name="csrf-token" content="([^"]*)">', html)
            assert token is not None, "not signed in: the page has no CSRF token"
            response = await browser.post(
                f"{gateway_url}/web/api/jobs",
                data=_upload_form(),
                headers={"X-CSRF-Token": unescape(token.group(1))},
            )
            assert response.status == 202, await response.text()
            [job] = (await response.json())["jobs"]
        stored = await app[STORE_KEY].get(job["job_id"])
        assert stored is not None
        assert stored.owner == USER
    finally:
        await server.close()


@pytest.fixture
def cli_logging() -> Iterator[None]:
    """The in-process gateway logs to stderr, not into the commands' output; the commands'
    own structlog configuration is undone for later tests."""
    with logs_to_real_stderr():
        yield


async def test_cli_signs_in_at_oidc_provider_with_the_device_flow_and_uploads(
    cli_logging: None,
    external_provider: ExternalProvider,
    gateway_settings: GatewaySettings,
    broker_settings: BrokerSettings,
    cleanup_namespace: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """``sealflow login --browser`` against oidc-provider: the "browser" it opens is this test,
    which approves the user code on the provider's device pages; the cached token then uploads
    with ``sealflow upload`` (a job owned by the provider's user)."""
    loop = asyncio.get_running_loop()
    approvals: list[concurrent.futures.Future[str]] = []

    async def approve(url: str) -> str:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            first = await session.get(url, allow_redirects=False)
            done = await sign_in_at_provider(session, first, "no redirect ends this")
            return await done.text()

    def open_browser(url: str, *args: object, **kwargs: object) -> bool:
        approvals.append(asyncio.run_coroutine_threadsafe(approve(url), loop))
        return True

    monkeypatch.setattr("webbrowser.open", open_browser)
    settings = gateway_settings.model_copy(update={"issuer": external_provider.issuer})
    app = create_app(settings, broker_settings=broker_settings)
    async with TestClient(TestServer(app, host="127.0.0.1")) as gateway:
        env = {
            "SEALFLOW_ISSUER": external_provider.issuer,
            "SEALFLOW_GATEWAY_URL": str(gateway.make_url("")).rstrip("/"),
            "SEALFLOW_CLIENT_ID": CLI_CLIENT_ID,
            "SEALFLOW_CLIENT_SECRET": None,
            "SEALFLOW_CONFIG_DIR": str(tmp_path / "config"),
            "NO_COLOR": "1",
            "COLUMNS": "200",
        }
        runner = CliRunner()
        login = await asyncio.to_thread(
            runner.invoke, cli, ["login", "--browser"], env=env, catch_exceptions=False
        )
        assert login.exit_code == 0, login.output
        [approval] = approvals
        assert "Sign-in Success" in await asyncio.wait_for(asyncio.wrap_future(approval), 10)
        # oidc-provider's userinfo refuses a token minted for another resource (the gateway),
        # so the CLI cannot name the user; the gateway does, from the token (owner below).
        assert f"Signed in at {external_provider.issuer}; scopes: jobs:read jobs:write" in (
            login.output
        )
        document = tmp_path / "notes.txt"
        document.write_text("hello harbour")
        upload = await asyncio.to_thread(
            runner.invoke, cli, ["upload", str(document)], env=env, catch_exceptions=False
        )
        assert upload.exit_code == 0, upload.output
        jobs = await app[STORE_KEY].list(owner=USER)
        assert len(jobs) == 1, upload.output
        assert jobs[0].job_id in upload.output


async def test_oidc_provider_token_uploads_through_the_gateway(
    external_provider: ExternalProvider,
    gateway_settings: GatewaySettings,
    broker_settings: BrokerSettings,
    cleanup_namespace: None,
) -> None:
    """Default settings suffice: oidc-provider signs ``at+jwt`` (ES256) with ``client_id`` and
    a short lifetime; the job belongs to the token's ``sub`` (the client)."""
    token = await external_provider.client_credentials_token()
    settings = gateway_settings.model_copy(update={"issuer": external_provider.issuer})
    app = create_app(settings, broker_settings=broker_settings)
    async with TestClient(TestServer(app)) as client:
        form = FormData()
        form.add_field("file", b"hello harbour", filename="notes.txt", content_type="text/plain")
        response = await client.post(
            "/api/jobs", data=form, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status == 202, await response.text()
        [job] = (await response.json())["jobs"]
        stored = await app[STORE_KEY].get(job["job_id"])
        assert stored is not None
        assert stored.owner == CLIENT_ID
        listed = await client.get("/api/jobs", headers={"Authorization": f"Bearer {token}"})
        assert listed.status == 200
        assert [j["job_id"] for j in (await listed.json())["jobs"]] == [job["job_id"]]


async def test_oidc_provider_token_for_another_audience_is_refused(
    external_provider: ExternalProvider,
    gateway_settings: GatewaySettings,
    broker_settings: BrokerSettings,
    cleanup_namespace: None,
) -> None:
    """A gateway with another audience refuses the provider's token (``aud`` is checked)."""
    token = await external_provider.client_credentials_token()
    settings = gateway_settings.model_copy(
        update={"issuer": external_provider.issuer, "api_audience": "another-api"}
    )
    app = create_app(settings, broker_settings=broker_settings)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/api/jobs", headers={"Authorization": f"Bearer {token}"})
        assert response.status == 401, await response.text()
