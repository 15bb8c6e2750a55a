"""The device authorization grant (RFC 8628) for ``sealflow login``.

``POST /device_authorization`` gives the client a device code and a short user code;
the user opens ``/device``, enters the code, signs in and approves (or denies); the client
polls ``/token`` with the device code and gets ``authorization_pending`` / ``slow_down`` /
``expired_token`` / ``access_denied`` until the tokens come.
"""

from __future__ import annotations

import hmac
import time
from typing import Any, Final

from aiohttp import web
from multidict import MultiMapping

from identity.clients import DEVICE_CODE_GRANT, Client
from identity.context import (
    AUDIT_KEY,
    DEVICE_REQUESTS_KEY,
    NO_STORE,
    SETTINGS_KEY,
    SIGNIN_KEY,
    STORE_KEY,
    authenticate_client,
    client_address,
    issue_user_tokens,
    optional,
    required,
)
from identity.devices import (
    DeviceRequest,
    PendingLimits,
    format_user_code,
    normalize_user_code,
)
from identity.errors import (
    AccessDenied,
    InvalidRequest,
    InvalidScope,
    RateLimited,
    UnauthorizedClient,
)
from identity.hashing import new_token
from identity.pages import PAGE_HEADERS, device_page, message_page
from identity.ratelimit import address_key
from identity.roles import OIDC_SCOPES, ROLE_SCOPES, grant_scopes, parse_scope

__all__ = ["add_device_routes", "grant_device_code"]

_CSRF_COOKIE: Final = "sealflow_device_csrf"
_KNOWN_SCOPES: Final = frozenset({*OIDC_SCOPES, *ROLE_SCOPES["admin"]})


def _check_device_client(client: Client) -> None:
    if not client.allows(DEVICE_CODE_GRANT):
        raise UnauthorizedClient("client may not use the device authorization grant")


async def _device_authorization(request: web.Request) -> web.Response:
    """RFC 8628 §3.1-3.2: a device code and a user code for an authenticated client."""
    settings = request.app[SETTINGS_KEY]
    address = address_key(client_address(request))
    # Limited per address before anything costs work (a confidential client's secret is Argon2).
    retry_after = await request.app[DEVICE_REQUESTS_KEY].take(address)
    if retry_after > 0:
        raise RateLimited(
            f"too many device requests from this address; try again in {retry_after} seconds",
            retry_after=retry_after,
            scope="address",
        )
    form = await request.post()
    client = await authenticate_client(request, form)
    _check_device_client(client)
    try:
        scope = parse_scope(optional(form, "scope"))
    except ValueError as error:
        raise InvalidScope("scope is malformed") from error
    # Unknown scopes are dropped, as at /authorize (RFC 6749 §3.3); the token response's
    # ``scope`` tells the client what it got, cut to the user's role.
    scope = [name for name in scope if name in _KNOWN_SCOPES]
    issued = await request.app[STORE_KEY].devices.issue(
        client_id=client.client_id,
        scope=scope,
        lifetime=settings.device_code_lifetime,
        interval=settings.device_poll_interval,
        limits=PendingLimits(
            overall=settings.device_max_pending,
            per_client=settings.device_max_pending_per_client,
            per_address=settings.device_max_pending_per_address,
        ),
        address=address,
    )
    shown = format_user_code(issued.user_code)
    verification_uri = f"{settings.issuer_url}/device"
    return web.json_response(
        {
            "device_code": issued.device_code,
            "user_code": shown,
            "verification_uri": verification_uri,
            "verification_uri_complete": f"{verification_uri}?user_code={shown}",
            "expires_in": issued.expires_in,
            "interval": issued.interval,
        },
        headers=NO_STORE,
    )


async def grant_device_code(
    request: web.Request, client: Client, form: MultiMapping[Any]
) -> web.Response:
    """The token endpoint's device-code grant (RFC 8628 §3.4-3.5)."""
    _check_device_client(client)
    device_code = required(form, "device_code")
    grant = await request.app[STORE_KEY].devices.poll(device_code, client.client_id)
    return await issue_user_tokens(
        request,
        client,
        grant="device_code",
        username=grant.username,
        scope=grant.scope,
        auth_time=grant.auth_time,
        family_id=grant.family_id,
        nonce=None,
        refresh_token=None,
    )


def _page(
    request: web.Request,
    *,
    user_code: str = "",
    error: str | None = None,
    status: int = 200,
    client_id: str | None = None,
    scope: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    csrf = new_token(24)
    response = web.Response(
        text=device_page(
            csrf=csrf, user_code=user_code, client_id=client_id, scope=scope, error=error
        ),
        content_type="text/html",
        status=status,
        headers={**PAGE_HEADERS, **(headers or {})},
    )
    response.set_cookie(
        _CSRF_COOKIE,
        csrf,
        httponly=True,
        samesite="Strict",
        path="/device",
        secure=request.app[SETTINGS_KEY].secure_cookies,
    )
    return response


def _message(title: str, text: str, *, status: int = 200) -> web.Response:
    return web.Response(
        text=message_page(title, text),
        content_type="text/html",
        status=status,
        headers=PAGE_HEADERS,
    )


async def _device_get(request: web.Request) -> web.Response:
    """The verification page, prefilled from ``verification_uri_complete``."""
    typed = request.query.get("user_code", "")[:32]
    if not typed:
        return _page(request)
    found = await _lookup(request, typed)
    if isinstance(found, web.Response):
        return found
    code, pending = found
    return _page(
        request,
        user_code=format_user_code(code),
        client_id=pending.client_id,
        scope=" ".join(pending.scope) or None,
    )


async def _device_post(request: web.Request) -> web.Response:
    """Check the code and the credentials, then record the user's approval or denial."""
    form = await request.post()
    signin = request.app[SIGNIN_KEY]
    address = client_address(request)
    cookie = request.cookies.get(_CSRF_COOKIE, "")
    sent = form.get("csrf_token")
    if not cookie or not isinstance(sent, str) or not hmac.compare_digest(cookie, sent):
        return _page(request, error="the form expired; try again", status=400)
    typed, username, password = form.get("user_code"), form.get("username"), form.get("password")
    action = form.get("action")
    if not (
        isinstance(typed, str)
        and isinstance(username, str)
        and isinstance(password, str)
        and typed
        and username
        and password
    ):
        return _page(request, error="enter the code, your username and password", status=400)
    if action not in ("approve", "deny"):
        return _page(request, user_code=typed[:32], error="choose approve or deny", status=400)
    found = await _lookup(request, typed)
    if isinstance(found, web.Response):
        return found
    code, pending = found
    try:
        user = await signin.attempt(
            username, password, address=address, client_id=pending.client_id, via="device"
        )
    except RateLimited as error:
        return _rate_limited(request, typed, error)
    except AccessDenied:
        return _page(
            request,
            user_code=format_user_code(code),
            client_id=pending.client_id,
            error="invalid username or password",
            status=401,
        )
    approve = action == "approve"
    try:
        await request.app[STORE_KEY].devices.decide(
            code, approve=approve, username=user.username, auth_time=int(time.time())
        )
    except InvalidRequest:
        return _page(request, error="unknown or expired code", status=400)
    request.app[AUDIT_KEY].record(
        type="device.approved" if approve else "device.denied",
        action="device",
        outcome="success" if approve else "denied",
        actor=user.username,
        subject=user.username,
        detail=f"client {pending.client_id}",
    )
    if approve:
        granted = grant_scopes(list(pending.scope), user.role, oidc=False)
        withheld = [
            name for name in pending.scope if name not in granted and name not in OIDC_SCOPES
        ]
        text = f"You are signed in as {user.username} ({user.role}); {pending.client_id} gets "
        text += " ".join(granted) if granted else "no API access"
        text += f" (not granted: {' '.join(withheld)})" if withheld else ""
        return _message("Device approved", text + ". Return to your device.")
    return _message("Device denied", "The request was denied; the device gets no access.")


async def _lookup(request: web.Request, typed: str) -> tuple[str, DeviceRequest] | web.Response:
    """The live pending request for a typed user code, or the page to answer with.

    Looking a code up counts against the address like a failed sign-in (reserved before the
    lookup, refunded when the code is found), or the page would be a guessing oracle.
    """
    signin, address = request.app[SIGNIN_KEY], client_address(request)
    try:
        reservation = await signin.reserve(username=None, address=address, via="device")
    except RateLimited as error:
        return _rate_limited(request, typed, error)
    code = normalize_user_code(typed)
    pending = None if code is None else await request.app[STORE_KEY].devices.pending(code)
    if code is None or pending is None:
        signin.failed(username=None, address=address, via="device", reason="unknown_user_code")
        return _page(request, user_code=typed[:32], error="unknown or expired code", status=400)
    await signin.refund(reservation)
    return code, pending


def _rate_limited(request: web.Request, typed: str, error: RateLimited) -> web.Response:
    return _page(
        request,
        user_code=typed[:32],
        error=f"{error.description}.",
        status=429,
        headers={"Retry-After": str(error.retry_after)},
    )


def add_device_routes(app: web.Application) -> None:
    """Register ``/device_authorization`` and the ``/device`` verification page."""
    app.router.add_post("/device_authorization", _device_authorization)
    app.router.add_get("/device", _device_get)
    app.router.add_post("/device", _device_post)
