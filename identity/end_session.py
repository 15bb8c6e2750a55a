"""Sign-out (``/end_session``, OpenID Connect RP-Initiated Logout 1.0, minimal)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from identity.context import (
    AUDIT_KEY,
    KEYS_KEY,
    NO_STORE,
    SETTINGS_KEY,
    STORE_KEY,
    optional,
    page_error,
    redirect,
    revoke_sign_in_tokens,
)
from identity.errors import InvalidRequest, InvalidToken
from identity.pages import PAGE_HEADERS, message_page
from identity.tokens import verify_id_token

__all__ = ["add_end_session_routes", "end_session"]


def _origin(uri: str) -> str:
    """``scheme://host[:port]`` of ``uri``, lower-cased."""
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}".lower()


async def end_session(request: web.Request) -> web.Response:
    """Sign out: revoke the sign-in the ID token hint names (its ``sid``), then go back.

    This provider keeps no browser session of its own, so ending one means revoking the
    sign-in's refresh-token family. The hint may have expired (up to the refresh-token
    lifetime). ``post_logout_redirect_uri`` is followed only for a known ``client_id`` the
    hint was issued to, and only to the origin of one of that client's redirect URIs.
    """
    settings = request.app[SETTINGS_KEY]
    store = request.app[STORE_KEY]
    params = request.query if request.method == "GET" else await request.post()
    try:
        hint = optional(params, "id_token_hint")
        client_id = optional(params, "client_id")
        redirect_uri = optional(params, "post_logout_redirect_uri")
        state = optional(params, "state")
    except InvalidRequest as error:
        return page_error(error.reason, error.description)
    client = await store.get_client(client_id) if client_id is not None else None
    claims: dict[str, Any] | None = None
    if hint is not None and client is not None:
        try:
            claims = verify_id_token(
                hint,
                request.app[KEYS_KEY].verification_keys(),
                issuer=settings.issuer_url,
                client_id=client.client_id,
                nonce=None,
                leeway=settings.refresh_token_lifetime,
            )
        except InvalidToken:
            claims = None
    if claims is not None and isinstance(claims.get("sid"), str):
        await store.revoke_family(str(claims["sid"]))
        await revoke_sign_in_tokens(request, str(claims["sid"]), "signed out")
    request.app[AUDIT_KEY].record(
        type="session.ended",
        action="end_session",
        outcome="success" if claims is not None else "failure",
        actor=str(claims["sub"]) if claims is not None else client_id,
        subject=str(claims["sub"]) if claims is not None else None,
        reason=None if claims is not None else "no_valid_id_token_hint",
        detail=f"client {client_id}" if client_id is not None else None,
    )
    allowed = (
        client is not None
        and redirect_uri is not None
        and any(_origin(redirect_uri) == _origin(uri) for uri in client.redirect_uris)
    )
    if allowed and claims is not None and redirect_uri is not None:
        if state is None:
            return web.Response(status=302, headers={"Location": redirect_uri, **NO_STORE})
        return redirect(redirect_uri, {"state": state})
    return web.Response(
        text=message_page("Signed out", "You are signed out of Sealflow."),
        content_type="text/html",
        headers=PAGE_HEADERS,
    )


def add_end_session_routes(app: web.Application) -> None:
    """Register ``GET`` and ``POST /end_session``."""
    app.router.add_get("/end_session", end_session)
    app.router.add_post("/end_session", end_session)
