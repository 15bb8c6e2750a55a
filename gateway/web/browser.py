"""The browser's session, resolved per request: cookie → server-side session → fresh token.

The encrypted cookie (aiohttp-session) holds only ``sid``. The session's access token is
refreshed silently when it is near expiry (under the session's lock: a refresh token is single
use) and then verified like any bearer token, so revocations and role changes apply to
browsers too. A session whose refresh fails, or whose token no longer verifies, is ended.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import structlog
from aiohttp import web
from aiohttp_session import get_session, new_session

from gateway.appkeys import AUTH_KEY
from gateway.auth import Principal
from gateway.errors import Unauthorized, Unavailable
from gateway.web.context import WebContext, web_context
from gateway.web.oidc import OidcError
from gateway.web.sessions import WebSession, new_id

__all__ = ["SID", "SignedIn", "browser_id", "end_session", "rotate_session", "signed_in"]

_log = structlog.get_logger("sealflow.gateway.web")

SID: Final = "sid"
_MAX_SID_CHARS: Final = 128


@dataclass(frozen=True, slots=True)
class SignedIn:
    """The browser's live session and the principal its access token proves."""

    session: WebSession
    principal: Principal


async def _cookie_sid(request: web.Request) -> str | None:
    cookie = await get_session(request)
    sid = cookie.get(SID)
    if not isinstance(sid, str) or not 0 < len(sid) <= _MAX_SID_CHARS:
        return None
    return sid


async def browser_id(request: web.Request) -> str:
    """The id the cookie names, made (and set) when there is none: binds a sign-in to it."""
    cookie = await get_session(request)
    sid = await _cookie_sid(request)
    if sid is None:
        sid = new_id()
        cookie[SID] = sid
    return sid


async def rotate_session(request: web.Request, session: WebSession) -> None:
    """A new cookie naming ``session``: nothing of the pre-sign-in cookie survives."""
    cookie = await new_session(request)
    cookie[SID] = session.sid


async def end_session(request: web.Request) -> WebSession | None:
    """Forget the browser's session (cookie and server side); returns what was ended."""
    sid = await _cookie_sid(request)
    cookie = await get_session(request)
    cookie.invalidate()
    if sid is None:
        return None
    return web_context(request).stores.end(sid)


async def _refresh(ctx: WebContext, session: WebSession) -> bool:
    """Make the access token fresh; False when the session can no longer be kept."""
    margin = ctx.settings.refresh_margin
    if session.tokens.expires_at - ctx.stores.clock() > margin:
        return True
    async with session.lock:
        now = ctx.stores.clock()
        if session.tokens.expires_at - now > margin:
            return True  # another request refreshed it while this one waited
        refresh_token = session.tokens.refresh_token
        if refresh_token is None:
            return False
        try:
            answer = await ctx.oidc.refresh(refresh_token)
        except OidcError as error:
            if error.reason == "issuer_unavailable" and session.tokens.expires_at > now:
                _log.warning("web.refresh_deferred", reason=error.reason)
                return True
            if error.reason == "issuer_unavailable":
                raise Unavailable("the sign-in service cannot be reached") from error
            _log.info("web.refresh_failed", subject=session.subject, reason=error.reason)
            return False
        session.tokens = answer.token_set(now, session.tokens)
        _log.info("web.token_refreshed", subject=session.subject)
        return True


async def signed_in(request: web.Request) -> SignedIn | None:
    """The browser's live session, with a verified fresh token; None when not signed in.

    A session that cannot be refreshed or whose token is refused is ended here.
    """
    sid = await _cookie_sid(request)
    if sid is None:
        return None
    ctx = web_context(request)
    session = ctx.stores.session(sid)
    if session is None:
        return None
    if not await _refresh(ctx, session):
        await end_session(request)
        return None
    try:
        principal = await request.app[AUTH_KEY].authenticate(session.tokens.access_token)
    except Unauthorized as error:
        _log.info("web.session_token_refused", subject=session.subject, error=error.detail)
        await end_session(request)
        return None
    if principal.subject != session.subject:
        await end_session(request)
        return None
    session.roles, session.scopes = principal.roles, principal.scopes
    return SignedIn(session=session, principal=principal)
