"""Revocations in PostgreSQL: durable, and loaded by any process on any host that starts later.

The control fanout reaches only the processes running when a revocation is sent. A daemon
whose ``SEALFLOW_DATABASE_URL`` is a PostgreSQL URL records each revocation it applies here
(:meth:`PgRevocations.add`, in place of the ``revocations.jsonl`` journal) and applies
:meth:`PgRevocations.load` at start, before it takes a message.
"""

from __future__ import annotations

from typing import Final, Self

import structlog
from psycopg_pool import AsyncConnectionPool
from pydantic import ValidationError

from schemas import Revocation
from store.postgres.database import (
    DEFAULT_CONNECT_TIMEOUT,
    Connection,
    open_pool,
    unavailable,
)
from store.timestamps import to_micros, utcnow

__all__ = ["MAX_LOADED", "PgRevocations"]

MAX_LOADED: Final = 100_000
"""Most revocations :meth:`PgRevocations.load` returns (the ``RevocationList`` default bound)."""

_POOL_SIZE: Final = 2
_log = structlog.get_logger("sealflow.store.revocations")


class PgRevocations:
    """The ``revocations`` table: one row per ``revocation_id``, its JSON as received."""

    __slots__ = ("_owns_pool", "pool")

    def __init__(self, pool: AsyncConnectionPool[Connection], *, owns_pool: bool = False) -> None:
        self.pool = pool
        self._owns_pool = owns_pool

    @classmethod
    async def open(cls, url: str, *, timeout: float = DEFAULT_CONNECT_TIMEOUT) -> Self:
        """A small pool of its own to ``url``, schema migrated (see ``open_pool``)."""
        return cls(await open_pool(url, max_size=_POOL_SIZE, timeout=timeout), owns_pool=True)

    async def close(self) -> None:
        """Close the pool if :meth:`open` made it."""
        if self._owns_pool:
            await self.pool.close()

    async def add(self, revocation: Revocation) -> bool:
        """Record ``revocation`` durably; True if it is new (a repeat changes nothing)."""
        until = None if revocation.until is None else revocation.until.timestamp()
        async with unavailable(), self.pool.connection() as conn:
            cur = await conn.execute(
                "INSERT INTO revocations (revocation_id, until, body, added_at) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (revocation_id) DO NOTHING",
                (
                    revocation.revocation_id,
                    until,
                    revocation.model_dump_json(),
                    to_micros(utcnow()),
                ),
            )
            return cur.rowcount == 1

    async def load(self, now: float) -> list[Revocation]:
        """The revocations that have not lapsed at ``now``, longest-lasting first, at most
        ``MAX_LOADED``; a row that no longer validates is skipped with a warning."""
        async with unavailable(), self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT body FROM revocations WHERE until IS NULL OR until > %s "
                "ORDER BY until DESC NULLS FIRST LIMIT %s",
                (now, MAX_LOADED),
            )
            rows = await cur.fetchall()
        loaded: list[Revocation] = []
        skipped = 0
        for (body,) in rows:
            try:
                loaded.append(Revocation.model_validate_json(body))
            except ValidationError:
                skipped += 1
        if skipped:
            _log.warning("revocations.rows_skipped", count=skipped)
        return loaded

    async def prune(self, now: float) -> int:
        """Delete lapsed revocations; returns how many."""
        async with unavailable(), self.pool.connection() as conn:
            cur = await conn.execute(
                "DELETE FROM revocations WHERE until IS NOT NULL AND until <= %s", (now,)
            )
            return cur.rowcount
