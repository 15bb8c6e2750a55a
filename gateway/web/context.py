"""What the browser side keeps on the application: its settings, sessions and OIDC client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from aiohttp import web

from gateway.web.oidc import OidcClient
from gateway.web.sessions import SessionStores
from gateway.web.settings import WebSettings

__all__ = ["WEB_KEY", "WebContext", "web_context"]


@dataclass(frozen=True, slots=True)
class WebContext:
    """The parts every page handler needs."""

    settings: WebSettings
    stores: SessionStores
    oidc: OidcClient
    issuer_origin: str
    """Scheme, host and port of the identity (the pages' ``form-action`` allows it)."""


WEB_KEY: Final = web.AppKey("gateway_web", WebContext)


def web_context(request: web.Request) -> WebContext:
    return request.app[WEB_KEY]
