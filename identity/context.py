"""What every identity handler shares: app keys, parameter parsing, client authentication,
JSON and redirect answers, the issuing of user tokens (code, refresh and device grants), and
the broadcast of a revoked sign-in's access tokens."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import unquote_plus, urlencode

from aiohttp import web
from multidict import MultiMapping

from identity.audit import AuditTrail
from identity.backends import AnyIdentityStore
from identity.clients import Client
from identity.control import REVOCATION_LEEWAY, RevocationOutbox
from identity.errors import (
    IdentityError,
    InvalidClient,
    InvalidGrant,
    InvalidRequest,
    InvalidToken,
    RateLimited,
)
from identity.keysource import KeySource
from identity.limits import RequestLimit
from identity.names import reserved_name
from identity.pages import PAGE_HEADERS, error_page
from identity.roles import grant_scopes
from identity.settings import IdentitySettings
from identity.signin import SignIn
from identity.tokens import TokenSigner

__all__ = [
    "AUDIT_KEY",
    "DEVICE_REQUESTS_KEY",
    "KEYS_KEY",
    "NO_STORE",
    "REVOCATIONS_KEY",
    "SETTINGS_KEY",
    "SIGNER_KEY",
    "SIGNIN_KEY",
    "STORE_KEY",
    "authenticate_client",
    "client_address",
    "error_json",
    "issue_user_tokens",
    "optional",
    "page_error",
    "redirect",
    "required",
    "revoke_sign_in_tokens",
    "token_response",
]

SETTINGS_KEY: Final = web.AppKey("identity_settings", IdentitySettings)
STORE_KEY: Final = web.AppKey[AnyIdentityStore]("identity_store")
KEYS_KEY: Final = web.AppKey("identity_keys", KeySource)
SIGNER_KEY: Final = web.AppKey("identity_signer", TokenSigner)
AUDIT_KEY: Final = web.AppKey("identity_audit", AuditTrail)
SIGNIN_KEY: Final = web.AppKey("identity_signin", SignIn)
REVOCATIONS_KEY: Final = web.AppKey("identity_revocations", RevocationOutbox)
DEVICE_REQUESTS_KEY: Final = web.AppKey("identity_device_requests", RequestLimit)
"""``/device_authorization`` calls per address, within ``device_request_window_seconds``."""

NO_STORE: Final[Mapping[str, str]] = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_MAX_PARAM_CHARS: Final = 2048


def error_json(error: IdentityError, *, basic: bool = False) -> web.Response:
    """The RFC 6749 §5.2 JSON error answer for ``error``."""
    headers = dict(NO_STORE)
    if isinstance(error, InvalidClient) and basic:
        headers["WWW-Authenticate"] = 'Basic realm="sealflow"'
    if isinstance(error, InvalidToken) or error.reason == "insufficient_scope":
        headers["WWW-Authenticate"] = f'Bearer error="{error.reason}"'
    if isinstance(error, RateLimited):
        headers["Retry-After"] = str(error.retry_after)
    return web.json_response(
        {"error": error.reason, "error_description": error.description},
        status=error.status,
        headers=headers,
    )


def redirect(uri: str, values: Mapping[str, str | None]) -> web.Response:
    """A 302 to ``uri`` with ``values`` (the ``None`` ones left out) added to its query."""
    query = urlencode({key: value for key, value in values.items() if value is not None})
    separator = "&" if "?" in uri else "?"
    return web.Response(status=302, headers={"Location": f"{uri}{separator}{query}", **NO_STORE})


def page_error(reason: str, description: str) -> web.Response:
    """An error shown as a page (400), for what must never be redirected."""
    return web.Response(
        text=error_page(reason, description),
        content_type="text/html",
        status=400,
        headers=PAGE_HEADERS,
    )


def optional(params: MultiMapping[Any], name: str) -> str | None:
    """A parameter given at most once, bounded in size; None when absent or empty."""
    values = params.getall(name, [])
    if len(values) > 1:
        raise InvalidRequest(f"{name} given more than once")
    if not values or values[0] == "":
        return None
    value = values[0]
    if not isinstance(value, str) or len(value) > _MAX_PARAM_CHARS:
        raise InvalidRequest(f"{name} is malformed")
    return value


def required(params: MultiMapping[Any], name: str) -> str:
    """A parameter that must be given exactly once."""
    value = optional(params, name)
    if value is None:
        raise InvalidRequest(f"{name} is required")
    return value


def client_address(request: web.Request) -> str:
    """The peer address the rate limits count against (proxies are not trusted)."""
    return request.remote or "unknown"


async def authenticate_client(request: web.Request, form: MultiMapping[Any]) -> Client:
    """The client of a token-endpoint style request: HTTP Basic, form secret, or public id."""
    store = request.app[STORE_KEY]
    header = request.headers.get("Authorization")
    if header is not None and header.startswith("Basic "):
        if optional(form, "client_secret") is not None:
            raise InvalidRequest("use one client authentication method")
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as error:
            raise InvalidClient("malformed Basic credentials") from error
        raw_id, colon, raw_secret = decoded.partition(":")
        if not colon:
            raise InvalidClient("malformed Basic credentials")
        basic_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
        form_id = optional(form, "client_id")
        if form_id is not None and form_id != basic_id:
            raise InvalidRequest("client_id does not match the credentials")
        return await store.authenticate_client(basic_id, secret)
    client_id = optional(form, "client_id")
    if client_id is None:
        raise InvalidClient("client authentication required")
    return await store.authenticate_client(client_id, optional(form, "client_secret"))


def token_response(body: Mapping[str, Any]) -> web.Response:
    """A token endpoint success answer, never cached."""
    return web.json_response(dict(body), headers=NO_STORE)


async def issue_user_tokens(
    request: web.Request,
    client: Client,
    *,
    grant: str,
    username: str,
    scope: tuple[str, ...],
    auth_time: int,
    family_id: str,
    nonce: str | None,
    refresh_token: str | None,
) -> web.Response:
    """Access, refresh and ID tokens for a user, cut to what the user's role allows now."""
    store = request.app[STORE_KEY]
    settings = request.app[SETTINGS_KEY]
    signer = request.app[SIGNER_KEY]
    user = await store.get_user(username)
    if user is None or user.disabled:
        raise InvalidGrant("user no longer exists or is disabled")
    if reserved_name(user.username):
        # made before the one namespace (identity.names): its sub would be a service's
        raise InvalidGrant("the username is a service's name; an operator must rename the user")
    allowed = grant_scopes(list(scope), user.role, oidc=True)
    key = request.app[KEYS_KEY].signing_key()
    access, claims = signer.access_token(
        key,
        subject=user.username,
        client_id=client.client_id,
        scope=allowed,
        roles=[user.role],
        sid=family_id,
    )
    await store.record_access_token(
        family_id=family_id, jti=str(claims["jti"]), expires_at=float(claims["exp"])
    )
    body: dict[str, Any] = {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": claims["exp"] - claims["iat"],
        "scope": " ".join(allowed),
    }
    if refresh_token is None and client.allows("refresh_token"):
        refresh_token = await store.issue_refresh_token(
            family_id=family_id,
            client_id=client.client_id,
            username=user.username,
            scope=allowed,
            auth_time=auth_time,
            lifetime=settings.refresh_token_lifetime,
        )
    if refresh_token is not None:
        body["refresh_token"] = refresh_token
    if "openid" in allowed:
        body["id_token"] = signer.id_token(
            key,
            subject=user.username,
            client_id=client.client_id,
            nonce=nonce,
            auth_time=auth_time,
            lifetime=settings.id_token_lifetime,
            extra={"preferred_username": user.username, "roles": [user.role], "sid": family_id},
        )
    request.app[AUDIT_KEY].record(
        type="token.refreshed" if grant == "refresh_token" else "token.issued",
        action=grant,
        outcome="success",
        actor=client.client_id,
        subject=user.username,
        jti=str(claims["jti"]),
        detail=f"scope {' '.join(allowed)}",
    )
    return token_response(body)


async def revoke_sign_in_tokens(request: web.Request, family_id: str, reason: str) -> int:
    """Broadcast a revocation of each live access token of sign-in ``family_id``; how many.

    Call it once the family is revoked in the store: its refresh tokens are dead there, and
    this tells the services that check access tokens on their own (the gateway) to refuse
    the access tokens it issued, until they would have expired anyway.
    """
    outbox = request.app[REVOCATIONS_KEY]
    live = await request.app[STORE_KEY].live_access_tokens(family_id)
    for token in live:
        outbox.revoke("jti", token.jti, reason, until=token.expires_at + REVOCATION_LEEWAY)
    return len(live)
