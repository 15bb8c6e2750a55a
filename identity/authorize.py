"""The authorization endpoint (``/authorize``): the login page and its form.

Errors about the client or the redirect URI are shown as a page and never redirected; other
errors go back to the (registered) redirect URI, as RFC 6749 §4.1.2.1 says.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web
from multidict import MultiMapping

from identity.clients import Client
from identity.context import (
    SETTINGS_KEY,
    SIGNIN_KEY,
    STORE_KEY,
    client_address,
    optional,
    page_error,
    redirect,
    required,
)
from identity.errors import AccessDenied, InvalidRequest, RateLimited
from identity.hashing import new_token
from identity.pages import PAGE_HEADERS, login_page
from identity.pkce import is_valid_challenge
from identity.roles import grant_scopes, parse_scope

__all__ = ["add_authorize_routes", "authorize_get", "authorize_post"]

_CSRF_COOKIE: Final = "sealflow_login_csrf"
_AUTHORIZE_PARAMS: Final = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
)


class _PageError(Exception):
    """A request error shown as a page: the client or redirect URI cannot be trusted."""

    def __init__(self, reason: str, description: str) -> None:
        super().__init__(description)
        self.reason = reason
        self.description = description


@dataclass(frozen=True, slots=True)
class _AuthorizeRequest:
    """A request whose client and redirect URI are known good, with its parameters."""

    client: Client
    redirect_uri: str
    params: dict[str, str]

    def get(self, name: str) -> str | None:
        """The parameter ``name``, or None."""
        return self.params.get(name)


async def _authorize_request(request: web.Request, params: MultiMapping[Any]) -> _AuthorizeRequest:
    """Check the client and redirect URI (errors shown as a page, never redirected)."""
    try:
        client_id = required(params, "client_id")
        redirect_uri = required(params, "redirect_uri")
    except InvalidRequest as error:
        raise _PageError(error.reason, error.description) from error
    client = await request.app[STORE_KEY].get_client(client_id)
    if client is None:
        raise _PageError("invalid_client", "unknown client")
    if redirect_uri not in client.redirect_uris:
        raise _PageError("invalid_request", "redirect_uri is not registered for this client")
    values: dict[str, str] = {}
    try:
        for name in _AUTHORIZE_PARAMS:
            value = optional(params, name)
            if value is not None:
                values[name] = value
    except InvalidRequest as error:
        raise _PageError(error.reason, error.description) from error
    return _AuthorizeRequest(client=client, redirect_uri=redirect_uri, params=values)


def _check_authorize(auth: _AuthorizeRequest, issuer: str) -> web.Response | None:
    """An error redirect for a bad but redirectable request, or None when it is fine."""

    def fail(reason: str, description: str) -> web.Response:
        return redirect(
            auth.redirect_uri,
            {
                "error": reason,
                "error_description": description,
                "state": auth.get("state"),
                "iss": issuer,
            },
        )

    if auth.get("response_type") != "code":
        return fail("unsupported_response_type", "only response_type=code is supported")
    if not auth.client.allows("authorization_code"):
        return fail("unauthorized_client", "client may not use the authorization code grant")
    challenge, method = auth.get("code_challenge"), auth.get("code_challenge_method")
    if challenge is None:
        if auth.client.public:
            return fail("invalid_request", "PKCE code_challenge is required for public clients")
    elif method != "S256" or not is_valid_challenge(challenge):
        return fail("invalid_request", "code_challenge must be S256")
    try:
        parse_scope(auth.get("scope"))
    except ValueError:
        return fail("invalid_scope", "scope is malformed")
    return None


def _login_response(
    auth: _AuthorizeRequest,
    *,
    secure: bool,
    error: str | None = None,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    csrf = new_token(24)
    response = web.Response(
        text=login_page(
            client_id=auth.client.client_id, hidden=auth.params, csrf=csrf, error=error
        ),
        content_type="text/html",
        status=status,
        headers={**PAGE_HEADERS, **(headers or {})},
    )
    response.set_cookie(
        _CSRF_COOKIE, csrf, httponly=True, samesite="Strict", path="/authorize", secure=secure
    )
    return response


async def authorize_get(request: web.Request) -> web.Response:
    """The sign-in page for a valid authorization request."""
    settings = request.app[SETTINGS_KEY]
    try:
        auth = await _authorize_request(request, request.query)
    except _PageError as error:
        return page_error(error.reason, error.description)
    failure = _check_authorize(auth, settings.issuer_url)
    if failure is not None:
        return failure
    return _login_response(auth, secure=settings.secure_cookies)


async def authorize_post(request: web.Request) -> web.Response:
    """The sign-in form: check the credentials, then redirect back with a code."""
    settings = request.app[SETTINGS_KEY]
    store = request.app[STORE_KEY]
    signin = request.app[SIGNIN_KEY]
    form = await request.post()
    try:
        auth = await _authorize_request(request, form)
    except _PageError as error:
        return page_error(error.reason, error.description)
    failure = _check_authorize(auth, settings.issuer_url)
    if failure is not None:
        return failure
    cookie = request.cookies.get(_CSRF_COOKIE, "")
    sent = form.get("csrf_token")
    if not cookie or not isinstance(sent, str) or not hmac.compare_digest(cookie, sent):
        return page_error("invalid_request", "the sign-in form expired; try again")
    username, password = form.get("username"), form.get("password")
    secure = settings.secure_cookies
    if not isinstance(username, str) or not isinstance(password, str) or not username:
        return _login_response(
            auth, secure=secure, error="enter a username and password", status=400
        )
    try:
        user = await signin.attempt(
            username,
            password,
            address=client_address(request),
            client_id=auth.client.client_id,
            via="authorize",
        )
    except RateLimited as error:
        return _login_response(
            auth,
            secure=secure,
            error=f"{error.description}.",
            status=429,
            headers={"Retry-After": str(error.retry_after)},
        )
    except AccessDenied:
        return _login_response(
            auth, secure=secure, error="invalid username or password", status=401
        )
    scope = grant_scopes(parse_scope(auth.get("scope")), user.role, oidc=True)
    code = await store.issue_code(
        client_id=auth.client.client_id,
        redirect_uri=auth.redirect_uri,
        username=user.username,
        scope=scope,
        code_challenge=auth.get("code_challenge"),
        nonce=auth.get("nonce"),
        auth_time=int(time.time()),
        lifetime=settings.code_lifetime,
    )
    response = redirect(
        auth.redirect_uri, {"code": code, "state": auth.get("state"), "iss": settings.issuer_url}
    )
    response.del_cookie(_CSRF_COOKIE, path="/authorize")
    return response


def add_authorize_routes(app: web.Application) -> None:
    """Register ``GET`` and ``POST /authorize``."""
    app.router.add_get("/authorize", authorize_get)
    app.router.add_post("/authorize", authorize_post)
