"""Browser-side test helpers: a gateway serving pages on a known port, and a cookie-keeping
HTTP "browser" that signs in through the real forms (on the identity of ``gateway_testing``).

The gateway's URL must be known before its app is made (it is the OAuth redirect URI), so
the gateway listens on a port picked beforehand and ``SEALFLOW_GATEWAY_URL`` names it.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from html import unescape
from typing import Any
from urllib.parse import urljoin

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from gateway_testing import (
    PASSWORD,
    Issuer,
    gateway_settings_for,
    listening_socket,
    serve_on,
    url_of,
)

from broker import BrokerSettings
from gateway import GatewaySettings, create_app
from gateway.web import WEB_CLIENT_ID, WEB_GRANT_TYPES
from identity import STORE_KEY as IDENTITY_STORE_KEY


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
    sock = listening_socket()
    url = url_of(sock)
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
    server = serve_on(app, sock)
    await server.start_server()
    try:
        yield WebGateway(url=url, issuer=issuer, server=server, settings=chosen)
    finally:
        await server.close()


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
