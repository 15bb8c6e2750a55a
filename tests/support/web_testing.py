"""Browser-side test helpers: the identity, a gateway serving pages on a known port, the
pipeline daemons, and a cookie-keeping HTTP "browser" that signs in through the real forms.

The gateway's URL must be known before its app is made (it is the OAuth redirect URI), so
the gateway listens on a port picked beforehand and ``SEALFLOW_GATEWAY_URL`` names it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from gateway_testing import AUDIENCE, Issuer, free_port
from sealflow_testing import queue_counts
from yarl import URL

from broker import BrokerSettings
from gateway import RUNTIME_KEY, SETTINGS_KEY, GatewaySettings, create_app
from gateway.web import WEB_CLIENT_ID, WEB_GRANT_TYPES
from identity import STORE_KEY as IDENTITY_STORE_KEY
from identity import IdentitySettings
from identity import create_app as create_identity_app

PASSWORD = "a password made for this test only"
USERS = {"alice": "user", "bob": "user", "vera": "viewer", "root": "admin"}


@contextlib.asynccontextmanager
async def identity_server(keys_dir: Path, data_dir: Path) -> AsyncIterator[Issuer]:
    """The real identity provider on a localhost port, with the test users."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = IdentitySettings(
        issuer=url, data_dir=data_dir, keys_dir=keys_dir, api_audience=AUDIENCE
    )
    server = TestServer(create_identity_app(settings), host="127.0.0.1", port=port)
    await server.start_server()
    try:
        store = server.app[IDENTITY_STORE_KEY]
        for name, role in USERS.items():
            await store.add_user(name, PASSWORD, role)  # type: ignore[arg-type]
        yield Issuer(url=url, keys_dir=keys_dir, server=server)
    finally:
        await server.close()


def gateway_settings_for(issuer: Issuer, broker_settings: BrokerSettings) -> GatewaySettings:
    return GatewaySettings(
        issuer=issuer.url,
        api_audience=AUDIENCE,
        data_dir=broker_settings.data_dir,
        keys_dir=broker_settings.keys_dir,
        max_upload_bytes=64 * 1024,
        max_request_bytes=256 * 1024,
        max_files_per_upload=8,
        jwks_refetch_interval=0.0,
        sse_heartbeat_seconds=1.0,
        sse_poll_seconds=1.0,
        audit_url=f"http://127.0.0.1:{free_port()}",
        audit_timeout=5.0,
    )


@dataclass
class WebGateway:
    """A gateway serving pages at ``url``, trusting ``issuer``."""

    url: str
    issuer: Issuer
    server: TestServer
    settings: GatewaySettings

    @property
    def app(self) -> web.Application:
        return self.server.app


@contextlib.asynccontextmanager
async def web_gateway(
    issuer: Issuer,
    broker_settings: BrokerSettings,
    monkeypatch: pytest.MonkeyPatch,
    *,
    settings: GatewaySettings | None = None,
    env: dict[str, str] | None = None,
) -> AsyncIterator[WebGateway]:
    """The gateway on a known port, its browser client registered at the identity."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("SEALFLOW_GATEWAY_URL", url)
    monkeypatch.delenv("SEALFLOW_SESSION_SECRET", raising=False)
    monkeypatch.delenv("SEALFLOW_WEB_CLIENT_SECRET", raising=False)
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    await issuer.app[IDENTITY_STORE_KEY].ensure_public_client(
        WEB_CLIENT_ID, grant_types=list(WEB_GRANT_TYPES), redirect_uris=[f"{url}/callback"]
    )
    chosen = settings if settings is not None else gateway_settings_for(issuer, broker_settings)
    app = create_app(chosen, broker_settings=broker_settings)
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    try:
        yield WebGateway(url=url, issuer=issuer, server=server, settings=chosen)
    finally:
        await server.close()


@contextlib.asynccontextmanager
async def pipeline(broker_settings: BrokerSettings, app: web.Application) -> AsyncIterator[None]:
    """The audit, parser and worker daemons in-process, consuming before this yields."""
    from audit import AuditSettings
    from audit.daemon import AuditDaemonSettings
    from audit.daemon import serve as serve_audit
    from parser.daemon import ParserSettings
    from parser.daemon import serve as serve_parser
    from workers import WorkerSettings
    from workers import serve as serve_worker

    stop = asyncio.Event()
    settings = broker_settings
    api_port = URL(app[SETTINGS_KEY].audit_url).port or 0  # the gateway reads the log there
    daemons = [
        asyncio.create_task(
            serve_audit(
                settings,
                AuditDaemonSettings(health_port=0, api_port=api_port, batch_wait=0.001),
                AuditSettings(data_dir=settings.data_dir, keys_dir=settings.keys_dir),
                stop=stop,
            )
        ),
        asyncio.create_task(
            serve_parser(settings, ParserSettings(health_port=0, timeout_seconds=15), stop=stop)
        ),
        asyncio.create_task(serve_worker(settings, WorkerSettings(health_port=0), stop=stop)),
    ]
    runtime = app[RUNTIME_KEY]
    assert runtime.consume_channel is not None
    async with asyncio.timeout(60):
        for queue in ("worker.jobs", "parser.requests", "audit.events"):
            name = runtime.topology.queue(queue)
            while (await queue_counts(runtime.consume_channel, name))[1] == 0:
                for task in daemons:
                    if task.done():
                        task.result()
                await asyncio.sleep(0.05)
    try:
        yield
    finally:
        stop.set()
        results = await asyncio.gather(*daemons, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result


_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]*)">')
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def csrf_of(html: str) -> str:
    """The CSRF token a page carries in its ``<meta>``."""
    match = _CSRF_META.search(html)
    assert match is not None, "the page has no csrf-token meta"
    return unescape(match.group(1))


@dataclass
class Browser:
    """An HTTP client keeping cookies like a browser, following redirects by hand."""

    gateway: WebGateway
    session: aiohttp.ClientSession
    visited: list[str] = field(default_factory=list)

    async def get(self, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        return await self.session.get(urljoin(self.gateway.url, path), **kwargs)

    async def post(self, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        return await self.session.post(urljoin(self.gateway.url, path), **kwargs)

    async def follow(self, response: aiohttp.ClientResponse) -> aiohttp.ClientResponse:
        """Follow redirects (at most ten), recording each location."""
        for _ in range(10):
            if response.status not in {301, 302, 303, 307}:
                return response
            location = urljoin(str(response.url), response.headers["Location"])
            self.visited.append(location)
            response.release()
            response = await self.session.get(location, allow_redirects=False)
        raise AssertionError("too many redirects")

    async def sign_in(
        self, user: str, path: str = "/", password: str = PASSWORD
    ) -> aiohttp.ClientResponse:
        """Open ``path`` (``/login`` for ``/``), sign in on the identity's form, return the
        page the gateway finally shows."""
        start = "/login" if path == "/" else path
        first = await self.get(start, allow_redirects=False)
        return await self.follow(await self.through_identity(first, user, password))

    async def through_identity(
        self, response: aiohttp.ClientResponse, user: str, password: str = PASSWORD
    ) -> aiohttp.ClientResponse:
        """Follow ``response`` to the identity's form and sign in; returns the gateway's
        ``/callback`` answer, not followed."""
        page = await self.follow(response)
        html = await page.text()
        assert 'action="/authorize"' in html, html[:500]
        fields = {unescape(n): unescape(v) for n, v in _HIDDEN.findall(html)}
        fields.update({"username": user, "password": password})
        posted = await self.session.post(
            urljoin(str(page.url), "/authorize"), data=fields, allow_redirects=False
        )
        assert posted.status == 302, await posted.text()
        location = posted.headers["Location"]
        self.visited.append(location)
        return await self.session.get(location, allow_redirects=False)

    async def csrf(self, path: str = "/") -> str:
        response = await self.get(path)
        return csrf_of(await response.text())


@contextlib.asynccontextmanager
async def browser(gateway: WebGateway) -> AsyncIterator[Browser]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield Browser(gateway=gateway, session=session)
