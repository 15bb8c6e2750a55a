"""The UserInfo endpoint (``/userinfo``, OpenID Connect Core §5.3)."""

from __future__ import annotations

from aiohttp import web

from identity.context import KEYS_KEY, NO_STORE, SETTINGS_KEY, STORE_KEY
from identity.errors import IdentityError, InvalidToken
from identity.tokens import verify_access_token

__all__ = ["add_userinfo_routes", "userinfo"]


async def userinfo(request: web.Request) -> web.Response:
    """The signed-in user's claims for a valid, unrevoked access token with ``openid``."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("bearer token required")
    settings = request.app[SETTINGS_KEY]
    store = request.app[STORE_KEY]
    claims = verify_access_token(
        token.strip(),
        request.app[KEYS_KEY].verification_keys(),
        issuer=settings.issuer_url,
        audience=settings.api_audience,
    )
    if await store.is_jti_revoked(claims.jti) or (
        claims.sid is not None and await store.is_family_revoked(claims.sid)
    ):
        raise InvalidToken("token revoked")
    if not claims.has_scope("openid"):
        error = IdentityError("the openid scope is required", reason="insufficient_scope")
        error.status = 403
        raise error
    user = await store.get_user(claims.subject)
    if user is None or user.disabled:
        raise InvalidToken("user no longer exists or is disabled")
    return web.json_response(
        {"sub": user.username, "preferred_username": user.username, "roles": [user.role]},
        headers=NO_STORE,
    )


def add_userinfo_routes(app: web.Application) -> None:
    """Register ``GET`` and ``POST /userinfo``."""
    app.router.add_get("/userinfo", userinfo)
    app.router.add_post("/userinfo", userinfo)
