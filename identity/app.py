"""The OpenID Connect provider as an aiohttp application (DESIGN §5): middlewares, the
shared state of the handlers, and the routes of each endpoint module."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable

import structlog
from aiohttp import web

from broker import AuditSink
from identity.audit import AuditTrail, LogAuditSink
from identity.authorize import add_authorize_routes
from identity.backends import AnyIdentityStore, open_identity_state
from identity.clients import DEVICE_CODE_GRANT
from identity.context import (
    AUDIT_KEY,
    DEVICE_REQUESTS_KEY,
    KEYS_KEY,
    REVOCATIONS_KEY,
    SETTINGS_KEY,
    SIGNER_KEY,
    SIGNIN_KEY,
    STORE_KEY,
    error_json,
)
from identity.control import LogRevocationSink, RevocationOutbox, RevocationSink
from identity.device_flow import add_device_routes
from identity.discovery import add_discovery_routes
from identity.end_session import add_end_session_routes
from identity.errors import IdentityError, InvalidRequest
from identity.keysource import KeySource
from identity.revoke import add_revoke_routes
from identity.settings import CLI_CLIENT_ID, IdentitySettings
from identity.signin import SignIn
from identity.token_endpoint import add_token_routes
from identity.tokens import TokenSigner
from identity.userinfo import add_userinfo_routes

__all__ = ["AUDIT_KEY", "KEYS_KEY", "REVOCATIONS_KEY", "SETTINGS_KEY", "STORE_KEY", "create_app"]

_log = structlog.get_logger("sealflow.identity")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """An :class:`IdentityError` becomes its RFC 6749 JSON answer."""
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


async def _seed_cli_client(store: AnyIdentityStore, settings: IdentitySettings) -> None:
    """Register ``sealflow-cli`` unless it exists; a user holding that name is logged, not fatal."""
    if not settings.seed_cli_client:
        return
    try:
        added = await store.ensure_public_client(
            CLI_CLIENT_ID, grant_types=[DEVICE_CODE_GRANT, "refresh_token"]
        )
    except InvalidRequest as error:
        _log.error(
            "identity.client_seed_failed",
            client_id=CLI_CLIENT_ID,
            error=error.description,
            detail="sealflow login cannot work until the name is freed",
        )
        return
    if added:
        _log.info("identity.client_seeded", client_id=CLI_CLIENT_ID)


def create_app(
    settings: IdentitySettings | None = None,
    *,
    audit: AuditSink | None = None,
    revocations: RevocationSink | None = None,
    clock: Callable[[], float] = time.time,
) -> web.Application:
    """The identity provider; its store opens on startup and closes on cleanup.

    ``audit`` receives every sign-in, token and revocation event, and ``revocations`` every
    revocation to broadcast on ``sealflow.control`` (broker sinks in the daemon, recording
    ones in tests; by default both are only logged). ``clock`` drives expiry and the rate
    limits, so tests can move time instead of sleeping.
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
    outbox = RevocationOutbox(
        revocations if revocations is not None else LogRevocationSink(),
        max_queued=settings.audit_queue_size,
        clock=clock,
    )
    app[REVOCATIONS_KEY] = outbox

    async def store_context(app: web.Application) -> AsyncIterator[None]:
        state = await open_identity_state(settings, clock=clock)
        store = state.store
        app[STORE_KEY] = store
        app[DEVICE_REQUESTS_KEY] = state.device_requests
        app[SIGNIN_KEY] = SignIn(store, state.signin_limits, trail)
        trail.start()
        outbox.start()
        try:
            await _seed_cli_client(store, settings)
            yield
        finally:
            await outbox.close()
            await trail.close()
            await store.close()

    app.cleanup_ctx.append(store_context)
    add_discovery_routes(app)
    add_authorize_routes(app)
    add_token_routes(app)
    add_userinfo_routes(app)
    add_revoke_routes(app)
    add_end_session_routes(app)
    add_device_routes(app)
    return app
