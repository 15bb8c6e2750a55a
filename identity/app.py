"""The OpenID Connect provider as an aiohttp application (DESIGN §5)."""

from __future__ import annotations

import hmac
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode, urlsplit

import structlog
from aiohttp import web
from multidict import MultiMapping

from broker import AuditSink
from identity.audit import AuditTrail, LogAuditSink
from identity.context import (
    AUDIT_KEY,
    KEYS_KEY,
    NO_STORE,
    SETTINGS_KEY,
    SIGNER_KEY,
    SIGNIN_KEY,
    STORE_KEY,
    authenticate_client,
    client_address,
    error_json,
    issue_user_tokens,
    optional,
    required,
    token_response,
)
from identity.device_flow import add_device_routes, grant_device_code
from identity.errors import (
    AccessDenied,
    IdentityError,
    InvalidGrant,
    InvalidRequest,
    InvalidScope,
    InvalidToken,
    RateLimited,
    TokenReuse,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from identity.hashing import new_token
from identity.keysource import KeySource
from identity.pages import PAGE_HEADERS, error_page, login_page, message_page
from identity.pkce import is_valid_challenge, verify_pkce
from identity.ratelimit import LoginLimiter
from identity.roles import ROLE_SCOPES, grant_scopes, parse_scope
from identity.settings import CLI_CLIENT_ID, IdentitySettings
from identity.signin import SignIn
from identity.store import DEVICE_CODE_GRANT, Client, IdentityStore
from identity.tokens import TokenSigner, verify_access_token, verify_id_token

__all__ = ["AUDIT_KEY", "KEYS_KEY", "SETTINGS_KEY", "STORE_KEY", "create_app"]

_log = structlog.get_logger("sealflow.identity")

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

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except IdentityError as error:
        basic = request.headers.get("Authorization", "").startswith("Basic")
        return error_json(error, basic=basic)


@web.middleware
async def _access_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    """One JSON line per request: method, path (never the query: it carries codes), status."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as error:
        status = error.status
        raise
    finally:
        _log.info(
            "http.request",
            method=request.method,
            path=request.path[:200],
            status=status,
            ms=round((time.perf_counter() - started) * 1000, 2),
        )


# -- discovery and keys -------------------------------------------------------------------


async def _discovery(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS_KEY]
    issuer = settings.issuer_url
    alg = request.app[KEYS_KEY].signing_key().alg
    scopes = ["openid", "profile", "offline_access", *ROLE_SCOPES["admin"]]
    return web.json_response(
        {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "userinfo_endpoint": f"{issuer}/userinfo",
            "revocation_endpoint": f"{issuer}/revoke",
            "end_session_endpoint": f"{issuer}/end_session",
            "jwks_uri": f"{issuer}/jwks.json",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "device_authorization_endpoint": f"{issuer}/device_authorization",
            "grant_types_supported": [
                "authorization_code",
                "refresh_token",
                "client_credentials",
                DEVICE_CODE_GRANT,
            ],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [alg],
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
                "none",
            ],
            "revocation_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
                "none",
            ],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": scopes,
            "claims_supported": [
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "preferred_username",
                "roles",
            ],
            "authorization_response_iss_parameter_supported": True,
        },
        headers={"Cache-Control": "public, max-age=300"},
    )


async def _jwks(request: web.Request) -> web.Response:
    return web.json_response(
        request.app[KEYS_KEY].jwks(), headers={"Cache-Control": "public, max-age=60"}
    )


# -- authorize ----------------------------------------------------------------------------


class _PageError(Exception):
    def __init__(self, reason: str, description: str) -> None:
        super().__init__(description)
        self.reason = reason
        self.description = description


@dataclass(frozen=True, slots=True)
class _AuthorizeRequest:
    client: Client
    redirect_uri: str
    params: dict[str, str]

    def get(self, name: str) -> str | None:
        return self.params.get(name)


def _redirect(uri: str, values: Mapping[str, str | None]) -> web.Response:
    query = urlencode({key: value for key, value in values.items() if value is not None})
    separator = "&" if "?" in uri else "?"
    return web.Response(status=302, headers={"Location": f"{uri}{separator}{query}", **NO_STORE})


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
        return _redirect(
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


def _page_error(error: _PageError) -> web.Response:
    return web.Response(
        text=error_page(error.reason, error.description),
        content_type="text/html",
        status=400,
        headers=PAGE_HEADERS,
    )


async def _authorize_get(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS_KEY]
    try:
        auth = await _authorize_request(request, request.query)
    except _PageError as error:
        return _page_error(error)
    failure = _check_authorize(auth, settings.issuer_url)
    if failure is not None:
        return failure
    return _login_response(auth, secure=settings.secure_cookies)


async def _authorize_post(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS_KEY]
    store = request.app[STORE_KEY]
    signin = request.app[SIGNIN_KEY]
    form = await request.post()
    try:
        auth = await _authorize_request(request, form)
    except _PageError as error:
        return _page_error(error)
    failure = _check_authorize(auth, settings.issuer_url)
    if failure is not None:
        return failure
    cookie = request.cookies.get(_CSRF_COOKIE, "")
    sent = form.get("csrf_token")
    if not cookie or not isinstance(sent, str) or not hmac.compare_digest(cookie, sent):
        return _page_error(_PageError("invalid_request", "the sign-in form expired; try again"))
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
    response = _redirect(
        auth.redirect_uri, {"code": code, "state": auth.get("state"), "iss": settings.issuer_url}
    )
    response.del_cookie(_CSRF_COOKIE, path="/authorize")
    return response


# -- token --------------------------------------------------------------------------------


def _audit_reuse(request: web.Request, client: Client, kind: str, error: TokenReuse) -> None:
    request.app[AUDIT_KEY].record(
        type="token.reuse_detected",
        action=kind,
        outcome="denied",
        actor=client.client_id,
        reason=f"{kind}_reused",
        detail=error.description,
    )


async def _grant_code(
    request: web.Request, client: Client, form: MultiMapping[Any]
) -> web.Response:
    if not client.allows("authorization_code"):
        raise UnauthorizedClient("client may not use the authorization code grant")
    code = required(form, "code")
    redirect_uri = required(form, "redirect_uri")
    verifier = optional(form, "code_verifier")
    try:
        grant = await request.app[STORE_KEY].redeem_code(code, client.client_id)
    except TokenReuse as error:
        _audit_reuse(request, client, "authorization_code", error)
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
        _audit_reuse(request, client, "refresh_token", error)
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
    if client.public or not client.allows("client_credentials") or client.role is None:
        raise UnauthorizedClient("client may not use the client credentials grant")
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


async def _token(request: web.Request) -> web.Response:
    form = await request.post()
    grant_type = required(form, "grant_type")
    handler = _GRANTS.get(grant_type)
    if handler is None:
        raise UnsupportedGrantType(f"grant type {grant_type!r} is not supported")
    client = await authenticate_client(request, form)
    return await handler(request, client, form)


# -- userinfo and revocation --------------------------------------------------------------


async def _userinfo(request: web.Request) -> web.Response:
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


async def _revoke(request: web.Request) -> web.Response:
    form = await request.post()
    client = await authenticate_client(request, form)
    token = required(form, "token")
    store = request.app[STORE_KEY]
    audit = request.app[AUDIT_KEY]
    if await store.revoke_refresh_token(token, client.client_id):
        audit.record(
            type="token.revoked",
            action="revoke",
            outcome="success",
            actor=client.client_id,
            detail="refresh token family revoked",
        )
        return web.Response(status=200, headers=NO_STORE)
    claims = None
    if token.count(".") == 2:
        settings = request.app[SETTINGS_KEY]
        try:
            claims = verify_access_token(
                token,
                request.app[KEYS_KEY].verification_keys(),
                issuer=settings.issuer_url,
                audience=settings.api_audience,
            )
        except InvalidToken:
            claims = None
    if claims is not None and claims.client_id == client.client_id:
        await store.revoke_jti(claims.jti, claims.expires_at)
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


# -- end session (OpenID Connect RP-Initiated Logout 1.0, minimal) ------------------------


def _origin(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}".lower()


async def _end_session(request: web.Request) -> web.Response:
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
        return _page_error(_PageError(error.reason, error.description))
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
        return _redirect(redirect_uri, {"state": state})
    return web.Response(
        text=message_page("Signed out", "You are signed out of Sealflow."),
        content_type="text/html",
        headers=PAGE_HEADERS,
    )


# -- the application ------------------------------------------------------------------------


def create_app(
    settings: IdentitySettings | None = None,
    *,
    audit: AuditSink | None = None,
    clock: Callable[[], float] = time.time,
) -> web.Application:
    """The identity provider; its store opens on startup and closes on cleanup.

    ``audit`` receives every sign-in, token and revocation event (a broker sink in the daemon,
    a recording one in tests; by default they are only logged). ``clock`` drives expiry and
    the rate limits, so tests can move time instead of sleeping.
    """
    settings = settings or IdentitySettings()
    app = web.Application(middlewares=[_access_log, _errors], client_max_size=64 * 1024)
    app[SETTINGS_KEY] = settings
    app[KEYS_KEY] = KeySource(settings.keys_dir)
    app[SIGNER_KEY] = TokenSigner(
        settings.issuer_url, settings.api_audience, access_lifetime=settings.access_token_lifetime
    )
    trail = AuditTrail(
        audit if audit is not None else LogAuditSink(), max_queued=settings.audit_queue_size
    )
    app[AUDIT_KEY] = trail
    limiter = LoginLimiter(
        per_user=settings.login_failures_per_user,
        per_address=settings.login_failures_per_address,
        window=settings.login_window_seconds,
        max_keys=settings.rate_limit_max_keys,
        clock=clock,
    )

    async def store_context(app: web.Application) -> AsyncIterator[None]:
        store = await IdentityStore.open(settings.database_path, clock=clock)
        app[STORE_KEY] = store
        app[SIGNIN_KEY] = SignIn(store, limiter, trail)
        trail.start()
        try:
            if settings.seed_cli_client and await store.ensure_public_client(
                CLI_CLIENT_ID, grant_types=[DEVICE_CODE_GRANT, "refresh_token"]
            ):
                _log.info("identity.client_seeded", client_id=CLI_CLIENT_ID)
            yield
        finally:
            await trail.close()
            await store.close()

    app.cleanup_ctx.append(store_context)
    app.router.add_get("/.well-known/openid-configuration", _discovery)
    app.router.add_get("/jwks.json", _jwks)
    app.router.add_get("/authorize", _authorize_get)
    app.router.add_post("/authorize", _authorize_post)
    app.router.add_post("/token", _token)
    app.router.add_get("/userinfo", _userinfo)
    app.router.add_post("/userinfo", _userinfo)
    app.router.add_post("/revoke", _revoke)
    app.router.add_get("/end_session", _end_session)
    app.router.add_post("/end_session", _end_session)
    add_device_routes(app)
    return app
