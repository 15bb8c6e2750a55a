"""Choosing the identity's backend from ``SEALFLOW_DATABASE_URL`` (DESIGN §8, §9).

Unset: the SQLite file under ``SEALFLOW_DATA_DIR`` and rate limits in this process's memory
(one identity instance). ``postgresql://…``: every identity table and the rate-limit counters
in that database, shared by any number of identity instances.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
import structlog

from identity.limits import LocalRequestLimit, LocalSignInLimits, RequestLimit, SignInLimits
from identity.postgres import IDENTITY_SCHEMA, PgIdentityStore, PgRequestLimit, PgSignInLimits
from identity.ratelimit import LoginLimiter, SlidingWindow
from identity.settings import IdentitySettings
from identity.store import IdentityStore
from store.backends import Upgrade, backend_of
from store.postgres.database import unavailable
from store.postgres.migrations import apply_migrations

__all__ = [
    "AnyIdentityStore",
    "IdentityState",
    "open_identity_state",
    "open_identity_store",
    "upgrade_identity_schema",
]

AnyIdentityStore = IdentityStore | PgIdentityStore
"""The identity store of either backend (the same methods, the same semantics)."""

_log = structlog.get_logger("sealflow.identity.backends")


@dataclass(frozen=True, slots=True)
class IdentityState:
    """The store and the rate limits of one identity instance, on one backend."""

    store: AnyIdentityStore
    signin_limits: SignInLimits
    device_requests: RequestLimit


async def open_identity_store(
    settings: IdentitySettings, *, clock: Callable[[], float] = time.time
) -> AnyIdentityStore:
    """The store the settings name, its schema migrated to this code's version."""
    if backend_of(settings.database_url) == "postgresql":
        assert settings.database_url is not None
        return await PgIdentityStore.open(settings.database_url, clock=clock)
    return await IdentityStore.open(settings.database_path, clock=clock)


async def open_identity_state(
    settings: IdentitySettings, *, clock: Callable[[], float] = time.time
) -> IdentityState:
    """The store and rate limits the settings name (PostgreSQL ones share the store's pool)."""
    store = await open_identity_store(settings, clock=clock)
    _log.info("identity.store_opened", backend=store.backend, schema=IDENTITY_SCHEMA.version)
    if isinstance(store, PgIdentityStore):
        return IdentityState(
            store,
            PgSignInLimits(
                store.pool,
                per_user=settings.login_failures_per_user,
                per_address=settings.login_failures_per_address,
                window=settings.login_window_seconds,
                clock=clock,
            ),
            PgRequestLimit(
                store.pool,
                scope="device_request",
                limit=settings.device_requests_per_address,
                window=settings.device_request_window_seconds,
                clock=clock,
            ),
        )
    limiter = LoginLimiter(
        per_user=settings.login_failures_per_user,
        per_address=settings.login_failures_per_address,
        window=settings.login_window_seconds,
        max_keys=settings.rate_limit_max_keys,
        clock=clock,
    )
    window = SlidingWindow(
        settings.device_requests_per_address,
        settings.device_request_window_seconds,
        max_keys=settings.rate_limit_max_keys,
        clock=clock,
    )
    return IdentityState(store, LocalSignInLimits(limiter), LocalRequestLimit(window))


async def upgrade_identity_schema(database_url: str | None) -> Upgrade | None:
    """Apply the identity's pending PostgreSQL migrations (``sealflow db upgrade``); None for
    the embedded backend, whose SQLite file the identity brings up to date when it opens it."""
    if backend_of(database_url) != "postgresql":
        return None
    assert database_url is not None
    async with unavailable(), await psycopg.AsyncConnection.connect(database_url) as conn:
        found = await apply_migrations(conn, IDENTITY_SCHEMA)
    return Upgrade("postgresql (identity)", found, IDENTITY_SCHEMA.version)
