"""The gateway application: every ``Operation`` registered behind its authentication.

``create_app`` wires the store, blobs, broker runtime (publisher, audit sink, the consumer
of ``gateway.events``), the live-event hub and the issuer's keys. Given a ``runtime`` (the
daemon's, already started), the app uses it; without one it starts and stops its own, so a
test server needs nothing else.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable

import structlog
from aiohttp import web

from broker import BrokerSettings, ServiceRuntime
from gateway.admin import OPERATIONS as ADMIN_OPERATIONS
from gateway.appkeys import (
    AUDIT_KEY,
    AUTH_KEY,
    BLOB_KEEPER_KEY,
    BLOBS_KEY,
    BROKER_SETTINGS_KEY,
    HUB_KEY,
    ISSUER_KEY,
    PUBLISHER_KEY,
    QUOTA_KEY,
    RUNTIME_KEY,
    SETTINGS_KEY,
    STORE_KEY,
)
from gateway.auditing import audit_denied
from gateway.auth import Authenticator, Handler, require
from gateway.blobkeeper import BlobKeeper
from gateway.catalogue import OPERATIONS as JOB_OPERATIONS
from gateway.errors import Unavailable, add_security_headers, error_middleware
from gateway.events import EVENTS_QUEUE, JobEventRelay
from gateway.hub import EventHub
from gateway.issuer import IssuerKeys
from gateway.openapi import add_docs_routes
from gateway.operations import Operation
from gateway.quota import JobQuota
from gateway.settings import GatewaySettings
from gateway.tracing import trace_middleware
from gateway.web import setup_web
from store import BlobStore, open_store

__all__ = ["all_operations", "create_app"]

_log = structlog.get_logger("sealflow.gateway")


def all_operations() -> list[Operation]:
    """Every route the gateway serves: the jobs API and the admin API."""
    return [*JOB_OPERATIONS, *ADMIN_OPERATIONS]


def _authenticator(request: web.Request) -> Authenticator:
    return request.app[AUTH_KEY]


def _with_timeout(handler: Handler, seconds: float) -> Handler:
    async def timed(request: web.Request) -> web.StreamResponse:
        try:
            async with asyncio.timeout(seconds):
                return await handler(request)
        except TimeoutError as error:
            raise Unavailable("the request took too long; try again later") from error

    return timed


def _register(app: web.Application, operations: Iterable[Operation]) -> None:
    settings = app[SETTINGS_KEY]
    for op in operations:
        handler = require(
            _authenticator,
            op.handler,
            auth=op.auth,
            scopes=op.scopes,
            roles=op.roles,
            on_denied=audit_denied,
        )
        if not op.own_timeout:
            handler = _with_timeout(handler, settings.request_timeout)
        app.router.add_route(op.method, op.path, handler, name=op.operation_id)


def create_app(
    settings: GatewaySettings | None = None,
    *,
    broker_settings: BrokerSettings | None = None,
    runtime: ServiceRuntime | None = None,
    operations: Iterable[Operation] | None = None,
) -> web.Application:
    """The gateway; its store, runtime (when it owns one) and issuer session open on startup."""
    settings = settings if settings is not None else GatewaySettings()
    broker_settings = (
        broker_settings
        if broker_settings is not None
        else BrokerSettings(data_dir=settings.data_dir, keys_dir=settings.keys_dir)
    )
    app = web.Application(
        middlewares=[trace_middleware, error_middleware], client_max_size=settings.client_max_size
    )
    app.on_response_prepare.append(add_security_headers)
    app[SETTINGS_KEY] = settings
    app[BROKER_SETTINGS_KEY] = broker_settings
    owns_runtime = runtime is None
    app[RUNTIME_KEY] = (
        runtime if runtime is not None else ServiceRuntime("gateway", broker_settings)
    )
    hub = EventHub(
        max_streams=settings.sse_max_streams,
        max_streams_per_owner=settings.sse_max_streams_per_user,
    )
    app[HUB_KEY] = hub
    app[QUOTA_KEY] = JobQuota(
        settings.max_jobs_in_flight_per_user, retry_after=settings.quota_retry_after
    )
    app[RUNTIME_KEY].revocations.on_revoked(hub.revoke)
    issuer = IssuerKeys(
        settings.issuer_url,
        internal_url=settings.issuer_internal_url,
        timeout=settings.issuer_timeout,
        max_bytes=settings.issuer_max_bytes,
        cache_seconds=settings.jwks_cache_seconds,
        refetch_interval=settings.jwks_refetch_interval,
        algorithms=settings.issuer_algorithms,
        inferred_algorithms=settings.issuer_inferred_algorithms,
    )
    app[ISSUER_KEY] = issuer
    app[AUTH_KEY] = Authenticator(
        issuer,
        audience=settings.api_audience,
        leeway=settings.token_leeway,
        max_entries=settings.token_cache_entries,
        revocations=app[RUNTIME_KEY].revocations,
        policy=settings.access_policy,
    )
    blobs = BlobStore(settings.data_dir / "blobs")
    app[BLOBS_KEY] = blobs

    async def parts(app: web.Application) -> AsyncIterator[None]:
        store = await open_store(settings.database_url, settings.data_dir)
        app[STORE_KEY] = store
        app[BLOB_KEEPER_KEY] = BlobKeeper(blobs, store)
        rt = app[RUNTIME_KEY]
        try:
            if owns_runtime:
                await rt.start()
            if rt.publisher is None or rt.audit is None:
                raise RuntimeError("the gateway's broker runtime is not started")
            app[PUBLISHER_KEY] = rt.publisher
            app[AUDIT_KEY] = rt.audit
            rt.consume(EVENTS_QUEUE, JobEventRelay(hub).routes())
            if owns_runtime:
                await rt.start_consumers()
            _log.info("gateway.started", issuer=settings.issuer_url)
            yield
        finally:
            if owns_runtime:
                await rt.stop()
            await issuer.close()
            await store.close()

    app.cleanup_ctx.append(parts)
    ops = list(operations) if operations is not None else all_operations()
    _register(app, ops)
    add_docs_routes(app, ops)
    setup_web(app, ops)
    return app
