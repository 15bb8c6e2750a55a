"""The token endpoint (``/token``): code, refresh, client-credentials and device grants.

A reused code or refresh token revokes its sign-in, is audited as ``token.reuse_detected``
and the sign-in's live access tokens are revoked on ``sealflow.control``; a refresh token of
a sign-in revoked before is refused and audited as ``token.rejected`` (no false alarm).
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web
from multidict import MultiMapping

from identity.clients import DEVICE_CODE_GRANT, Client
from identity.context import (
    AUDIT_KEY,
    KEYS_KEY,
    SETTINGS_KEY,
    SIGNER_KEY,
    STORE_KEY,
    authenticate_client,
    issue_user_tokens,
    optional,
    required,
    revoke_sign_in_tokens,
    token_response,
)
from identity.device_flow import grant_device_code
from identity.errors import (
    InvalidGrant,
    InvalidScope,
    RevokedToken,
    TokenReuse,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from identity.names import reserved_name
from identity.pkce import verify_pkce
from identity.roles import grant_scopes, parse_scope

__all__ = ["add_token_routes", "handle_token"]


async def _reused(request: web.Request, client: Client, kind: str, error: TokenReuse) -> None:
    """Audit a detected reuse and broadcast the revocation of the sign-in's access tokens."""
    revoked = await revoke_sign_in_tokens(request, error.family_id, f"{kind} reused")
    request.app[AUDIT_KEY].record(
        type="token.reuse_detected",
        action=kind,
        outcome="denied",
        actor=client.client_id,
        reason=f"{kind}_reused",
        detail=f"{error.description}; {revoked} live access token(s) revoked",
    )


def _revoked_presented(request: web.Request, client: Client, error: RevokedToken) -> None:
    """Audit a refresh token of an already revoked sign-in: refused, and no reuse alarm."""
    request.app[AUDIT_KEY].record(
        type="token.rejected",
        action="refresh_token",
        outcome="denied",
        actor=client.client_id,
        reason="refresh_token_revoked",
        detail=error.description,
    )


async def _grant_code(
    request: web.Request, client: Client, form: MultiMapping[Any]
) -> web.Response:
    """The authorization code grant, PKCE checked."""
    if not client.allows("authorization_code"):
        raise UnauthorizedClient("client may not use the authorization code grant")
    code = required(form, "code")
    redirect_uri = required(form, "redirect_uri")
    verifier = optional(form, "code_verifier")
    try:
        grant = await request.app[STORE_KEY].redeem_code(code, client.client_id)
    except TokenReuse as error:
        await _reused(request, client, "authorization_code", error)
        raise
    if grant.redirect_uri != redirect_uri:
        raise InvalidGrant("redirect_uri does not match the authorization request")
    if grant.code_challenge is not None:
        if verifier is None or not verify_pkce(grant.code_challenge, verifier):
            raise InvalidGrant("PKCE verification failed")
    elif verifier is not None or client.public:
        raise InvalidGrant("PKCE was not used in the authorization request")
    return await issue_user_tokens(
        request,
        client,
        grant="authorization_code",
        username=grant.username,
        scope=grant.scope,
        auth_time=grant.auth_time,
        family_id=grant.family_id,
        nonce=grant.nonce,
        refresh_token=None,
    )


async def _grant_refresh(
    request: web.Request, client: Client, form: MultiMapping[Any]
) -> web.Response:
    """The refresh token grant: rotate, optionally narrowing the scope."""
    if not client.allows("refresh_token"):
        raise UnauthorizedClient("client may not use refresh tokens")
    token = required(form, "refresh_token")
    try:
        narrowed = parse_scope(optional(form, "scope"))
    except ValueError as error:
        raise InvalidScope("scope is malformed") from error
    try:
        grant = await request.app[STORE_KEY].rotate_refresh_token(
            token, client.client_id, lifetime=request.app[SETTINGS_KEY].refresh_token_lifetime
        )
    except TokenReuse as error:
        await _reused(request, client, "refresh_token", error)
        raise
    except RevokedToken as error:
        _revoked_presented(request, client, error)
        raise
    if narrowed and not set(narrowed) <= set(grant.scope):
        raise InvalidScope("scope exceeds the original grant")
    return await issue_user_tokens(
        request,
        client,
        grant="refresh_token",
        username=grant.username,
        scope=tuple(narrowed) if narrowed else grant.scope,
        auth_time=grant.auth_time,
        family_id=grant.family_id,
        nonce=None,
        refresh_token=grant.new_token,
    )


async def _grant_client_credentials(
    request: web.Request, client: Client, form: MultiMapping[Any]
) -> web.Response:
    """The client credentials grant: a token for the client itself (``sub`` = its id)."""
    if client.public or not client.allows("client_credentials") or client.role is None:
        raise UnauthorizedClient("client may not use the client credentials grant")
    namesake = await request.app[STORE_KEY].get_user(client.client_id)
    if reserved_name(client.client_id) or namesake is not None:
        # made before the one namespace (identity.names): its sub would be a user's or service's
        raise UnauthorizedClient("client id is also a user's or a service's name; rename it")
    try:
        requested = parse_scope(optional(form, "scope"))
    except ValueError as error:
        raise InvalidScope("scope is malformed") from error
    allowed = grant_scopes(requested, client.role, oidc=False)
    if requested and not allowed:
        raise InvalidScope("none of the requested scopes is allowed")
    access, claims = request.app[SIGNER_KEY].access_token(
        request.app[KEYS_KEY].signing_key(),
        subject=client.client_id,
        client_id=client.client_id,
        scope=allowed,
        roles=[client.role],
    )
    request.app[AUDIT_KEY].record(
        type="token.issued",
        action="client_credentials",
        outcome="success",
        actor=client.client_id,
        subject=client.client_id,
        jti=str(claims["jti"]),
        detail=f"scope {' '.join(allowed)}",
    )
    return token_response(
        {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": claims["exp"] - claims["iat"],
            "scope": " ".join(allowed),
        }
    )


_GRANTS: Final = {
    "authorization_code": _grant_code,
    "refresh_token": _grant_refresh,
    "client_credentials": _grant_client_credentials,
    DEVICE_CODE_GRANT: grant_device_code,
}


async def handle_token(request: web.Request) -> web.Response:
    """The token endpoint: authenticate the client, then run its grant."""
    form = await request.post()
    grant_type = required(form, "grant_type")
    handler = _GRANTS.get(grant_type)
    if handler is None:
        raise UnsupportedGrantType(f"grant type {grant_type!r} is not supported")
    client = await authenticate_client(request, form)
    return await handler(request, client, form)


def add_token_routes(app: web.Application) -> None:
    """Register ``POST /token``."""
    app.router.add_post("/token", handle_token)
