"""``/login``, ``/callback``, ``/logout`` and ``/signed-out``: the authorization-code flow.

``/login`` records a pending sign-in (state, nonce, PKCE verifier, the page to return to)
bound to the browser's pre-sign-in cookie and sends the browser to the identity. ``/callback``
accepts only that state from that browser, redeems the code, checks the ID token's nonce,
verifies the access token like any bearer token, then starts a session under a new id and a
new cookie (rotation) and returns to the page asked for. ``/logout`` (POST, CSRF-checked)
ends the gateway session, revokes the refresh token and ends the identity's session.
"""

from __future__ import annotations

from typing import Final

import structlog
from aiohttp import web

from gateway.appkeys import AUTH_KEY
from gateway.auditing import audit
from gateway.errors import Unauthorized
from gateway.web.browser import browser_id, end_session, rotate_session, signed_in
from gateway.web.context import web_context
from gateway.web.csrf import CSRF_FIELD, check_csrf
from gateway.web.navigation import safe_return_path
from gateway.web.oidc import OidcError
from gateway.web.render import render

__all__ = ["add_signin_routes"]

_log = structlog.get_logger("sealflow.gateway.web.signin")

_MAX_PARAM_CHARS: Final = 4096


def _problem(request: web.Request, title: str, message: str, status: int) -> web.Response:
    return render(
        request,
        "error.html",
        {"title": title, "message": message, "status": status, "sign_in": True, "next": "/"},
        who=None,
        status=status,
    )


async def login(request: web.Request) -> web.StreamResponse:
    """Start a sign-in and send the browser to the identity's authorization endpoint."""
    ctx = web_context(request)
    return_to = safe_return_path(request.query.get("next"))
    who = await signed_in(request)
    if who is not None:
        raise web.HTTPSeeOther(return_to)
    pending = ctx.stores.begin_login(return_to=return_to, browser=await browser_id(request))
    try:
        target = await ctx.oidc.authorization_url(pending)
    except OidcError as error:
        _log.error("web.login_unavailable", reason=error.reason, error=error.detail)
        return _problem(
            request, "Sign-in is unavailable", "The sign-in service cannot be reached.", 503
        )
    raise web.HTTPSeeOther(target)


def _param(request: web.Request, name: str) -> str | None:
    values = request.query.getall(name, [])
    if len(values) != 1 or not values[0] or len(values[0]) > _MAX_PARAM_CHARS:
        return None
    return values[0]


async def callback(request: web.Request) -> web.StreamResponse:
    """The identity's answer: check it, redeem the code, start a fresh session."""
    ctx = web_context(request)
    state = _param(request, "state")
    pending = ctx.stores.take_login(state) if state is not None else None
    browser = await browser_id(request)
    if pending is None or pending.browser != browser:
        return _problem(
            request,
            "This sign-in has expired",
            "The sign-in took too long or was started in another browser. Please sign in again.",
            400,
        )
    issuer = _param(request, "iss")
    if issuer is not None and not await ctx.oidc.is_issuer(issuer):
        return _problem(request, "Sign-in failed", "The answer came from another issuer.", 400)
    error = _param(request, "error")
    code = _param(request, "code")
    if error is not None or code is None:
        _log.info("web.signin_refused", error=(error or "no_code")[:64])
        return _problem(request, "Sign-in was not completed", "Please try again.", 400)
    try:
        tokens, subject = await ctx.oidc.exchange_code(code, pending)
        principal = await request.app[AUTH_KEY].authenticate(tokens.access_token)
    except OidcError as failure:
        _log.warning("web.signin_failed", reason=failure.reason, error=failure.detail)
        return _problem(request, "Sign-in failed", "Please try again.", 400)
    except Unauthorized as failure:
        _log.warning("web.signin_token_refused", error=failure.detail)
        return _problem(request, "Sign-in failed", "Please try again.", 400)
    if principal.subject != subject:
        return _problem(request, "Sign-in failed", "The tokens name different users.", 400)
    session = ctx.stores.start(
        subject=subject,
        roles=principal.roles,
        scopes=principal.scopes,
        tokens=tokens.token_set(ctx.stores.clock()),
    )
    await rotate_session(request, session)
    await audit(
        request.app,
        type="session.started",
        action="browser sign-in",
        outcome="success",
        actor=subject,
        jti=principal.audit_jti,
        detail=f"roles {' '.join(principal.roles)}",
    )
    raise web.HTTPSeeOther(pending.return_to)


async def logout(request: web.Request) -> web.StreamResponse:
    """End the gateway session, revoke the refresh token, end the identity's session."""
    ctx = web_context(request)
    form = await request.post()
    who = await signed_in(request)
    if who is None:
        await end_session(request)
        raise web.HTTPSeeOther("/signed-out")
    sent = form.get(CSRF_FIELD)
    check_csrf(request, who.session.csrf, sent if isinstance(sent, str) else None, ctx.settings.url)
    ended = await end_session(request)
    id_token = None
    if ended is not None:
        id_token = ended.tokens.id_token
        if ended.tokens.refresh_token is not None:
            await ctx.oidc.revoke(ended.tokens.refresh_token, "refresh_token")
        await ctx.oidc.revoke(ended.tokens.access_token, "access_token")
    await audit(
        request.app,
        type="session.ended",
        action="browser sign-out",
        outcome="success",
        actor=who.principal.subject,
        jti=who.principal.audit_jti,
    )
    target = await ctx.oidc.end_session_url(id_token)
    raise web.HTTPSeeOther(target or "/signed-out")


async def signed_out(request: web.Request) -> web.StreamResponse:
    """Where the identity sends the browser after sign-out."""
    who = await signed_in(request)
    return render(request, "signed_out.html", {"title": "Signed out"}, who=who)


def add_signin_routes(app: web.Application) -> None:
    app.router.add_get("/login", login, name="page:login")
    app.router.add_get("/callback", callback, name="page:callback")
    app.router.add_post("/logout", logout, name="page:logout")
    app.router.add_get("/signed-out", signed_out, name="page:signedOut")
