"""Token revocation (``/revoke``, RFC 7009), told to the other services on ``sealflow.control``.

A refresh token revokes its whole sign-in (its family) and that sign-in's live access tokens;
an access token is revoked by its ``jti``. Either way the revocation is broadcast, so the
gateway, which checks access tokens on its own, stops accepting them within a second.
"""

from __future__ import annotations

from aiohttp import web

from identity.context import (
    AUDIT_KEY,
    KEYS_KEY,
    NO_STORE,
    REVOCATIONS_KEY,
    SETTINGS_KEY,
    STORE_KEY,
    authenticate_client,
    required,
    revoke_sign_in_tokens,
)
from identity.control import REVOCATION_LEEWAY
from identity.errors import InvalidToken
from identity.tokens import AccessClaims, verify_access_token

__all__ = ["add_revoke_routes", "revoke"]


def _access_claims(request: web.Request, token: str) -> AccessClaims | None:
    """The claims of ``token`` when it is one of our valid access tokens, else None."""
    if token.count(".") != 2:
        return None
    settings = request.app[SETTINGS_KEY]
    try:
        return verify_access_token(
            token,
            request.app[KEYS_KEY].verification_keys(),
            issuer=settings.issuer_url,
            audience=settings.api_audience,
        )
    except InvalidToken:
        return None


async def revoke(request: web.Request) -> web.Response:
    """Revoke a refresh or access token of the authenticated client; 200 even when unknown."""
    form = await request.post()
    client = await authenticate_client(request, form)
    token = required(form, "token")
    store = request.app[STORE_KEY]
    audit = request.app[AUDIT_KEY]
    family_id = await store.revoke_refresh_token(token, client.client_id)
    if family_id is not None:
        revoked = await revoke_sign_in_tokens(request, family_id, "refresh token revoked")
        audit.record(
            type="token.revoked",
            action="revoke",
            outcome="success",
            actor=client.client_id,
            detail=f"refresh token family revoked with {revoked} live access token(s)",
        )
        return web.Response(status=200, headers=NO_STORE)
    claims = _access_claims(request, token)
    if claims is not None and claims.client_id == client.client_id:
        await store.revoke_jti(claims.jti, claims.expires_at)
        request.app[REVOCATIONS_KEY].revoke(
            "jti",
            claims.jti,
            "access token revoked",
            until=claims.expires_at + REVOCATION_LEEWAY,
        )
        audit.record(
            type="token.revoked",
            action="revoke",
            outcome="success",
            actor=client.client_id,
            subject=claims.subject,
            jti=claims.jti,
            detail="access token revoked",
        )
    else:
        # RFC 7009 §2.2: an unknown token is not an error; still worth a line in the trail.
        audit.record(
            type="token.revoked",
            action="revoke",
            outcome="failure",
            actor=client.client_id,
            reason="unknown_token",
        )
    return web.Response(status=200, headers=NO_STORE)


def add_revoke_routes(app: web.Application) -> None:
    """Register ``POST /revoke``."""
    app.router.add_post("/revoke", revoke)
