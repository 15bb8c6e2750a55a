"""``setup_web``: the browser side of the gateway on its application (one call in create_app).

Adds the encrypted session cookie (aiohttp-session, holding only a session id), the Jinja2
templates (autoescaped), ``/static``, the sign-in routes, the pages, the session-authenticated
``/web/api`` for the pages' scripts, and friendly HTML error pages for everything that is not
the JSON API.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import aiohttp_jinja2
import aiohttp_session
import jinja2
import structlog
from aiohttp import web
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from cryptography.fernet import Fernet

from gateway.appkeys import AUTH_KEY, ISSUER_KEY, SETTINGS_KEY
from gateway.auth import Handler
from gateway.errors import GatewayError
from gateway.operations import Operation
from gateway.web.api import SESSION_API_PREFIX, SessionExpired, add_session_api
from gateway.web.browser import signed_in
from gateway.web.context import WEB_KEY, WebContext
from gateway.web.csrf import CsrfRejected
from gateway.web.navigation import login_path
from gateway.web.oidc import OidcClient
from gateway.web.pages import SignInNeeded, add_page_routes
from gateway.web.render import filesize, highlight, iso, render, when
from gateway.web.session_key import load_session_secret
from gateway.web.sessions import SessionStores
from gateway.web.settings import WebSettings
from gateway.web.signin import add_signin_routes

__all__ = ["SESSION_COOKIE", "setup_web"]

_log = structlog.get_logger("sealflow.gateway.web")

SESSION_COOKIE: Final = "sealflow_session"
HERE: Final = Path(__file__).resolve().parent
_NOT_PAGES: Final = ("/api/", "/web/api/", "/static/", "/docs", "/openapi")

_MESSAGES: Final = {
    400: ("That request did not make sense", "Please go back and try again."),
    401: ("Your session has expired", "Please sign in again to carry on."),
    403: ("You may not see this", "Your account does not have access to this page."),
    404: ("Not found", "There is nothing here, or it is not yours to see."),
    405: ("Not allowed", "This page cannot be used that way."),
    413: ("Too large", "That was more than the gateway accepts."),
    429: ("Too many requests", "Please wait a moment and try again."),
    503: ("Temporarily unavailable", "A service Sealflow needs cannot be reached. Try again soon."),
}


_FILTERS: Final[Mapping[str, Callable[..., str]]] = {
    "filesize": filesize,
    "when": when,
    "iso": iso,
}


def _is_page(path: str) -> bool:
    return path != "/api" and not path.startswith(_NOT_PAGES)


async def _error_page(request: web.Request, status: int, detail: str | None) -> web.Response:
    title, message = _MESSAGES.get(status, ("Something went wrong", "Please try again later."))
    if detail and status in {400, 403, 409, 413, 415}:
        message = detail
    try:
        who = await signed_in(request) if status != 401 else None
    except GatewayError:
        who = None
    return render(
        request,
        "error.html",
        {
            "title": title,
            "message": message,
            "status": status,
            "sign_in": status == 401,
            "next": request.path_qs if request.method == "GET" else "/",
        },
        who=who,
        status=status,
    )


@web.middleware
async def page_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Pages answer errors as friendly HTML pages (the API keeps its JSON errors)."""
    if not _is_page(request.path):
        return await handler(request)
    try:
        return await handler(request)
    except SignInNeeded as needed:
        raise web.HTTPSeeOther(login_path(needed.return_to)) from None
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return await _error_page(request, exc.status, None)
    except SessionExpired:
        return await _error_page(request, 401, None)
    except CsrfRejected as error:
        return await _error_page(request, 403, error.detail)
    except GatewayError as error:
        return await _error_page(request, error.status, error.detail)
    except Exception:  # noqa: BLE001 - a page never shows a trace
        _log.exception("web.page_failed", method=request.method, path=request.path)
        return await _error_page(request, 500, None)


async def _no_store(request: web.Request, response: web.StreamResponse) -> None:
    if request.path.startswith(SESSION_API_PREFIX + "/"):
        response.headers["Cache-Control"] = "no-store"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def setup_web(
    app: web.Application,
    operations: list[Operation],
    settings: WebSettings | None = None,
) -> WebContext:
    """Serve browsers from ``app`` (the gateway's application, before it starts)."""
    settings = settings if settings is not None else WebSettings()
    gateway_settings = app[SETTINGS_KEY]
    secret = load_session_secret(
        gateway_settings.keys_dir,
        settings.session_secret.get_secret_value() if settings.session_secret else None,
    )
    aiohttp_session.setup(
        app,
        EncryptedCookieStorage(
            Fernet(secret),
            cookie_name=SESSION_COOKIE,
            max_age=settings.session_max_seconds,
            httponly=True,
            samesite="Lax",
            secure=settings.secure_cookies,
            path="/",
        ),
    )
    app.middlewares.append(page_errors)
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(HERE / "templates")),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
        filters=_FILTERS,
    )
    env.globals["highlight"] = highlight
    app.router.add_static("/static", HERE / "static", name="web:static", append_version=False)
    issuer = gateway_settings.issuer_url
    context = WebContext(
        settings=settings,
        stores=SessionStores(
            max_sessions=settings.max_sessions,
            max_pending=settings.max_pending_logins,
            idle_seconds=settings.session_idle_seconds,
            max_seconds=settings.session_max_seconds,
            login_seconds=settings.login_seconds,
        ),
        oidc=OidcClient(issuer, app[ISSUER_KEY], settings),
        issuer_origin=_origin(issuer),
    )
    app[WEB_KEY] = context
    assert AUTH_KEY in app, "setup_web runs after the gateway's authenticator is set"

    async def close(app: web.Application) -> None:
        await context.oidc.close()

    app.on_cleanup.append(close)
    app.on_response_prepare.append(_no_store)
    add_signin_routes(app)
    add_page_routes(app)
    add_session_api(app, operations)
    _log.info("web.ready", url=settings.url, client_id=settings.client_id)
    return context
