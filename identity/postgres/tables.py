"""What the identity's PostgreSQL table classes share: the store's pool and a clock.

The PostgreSQL twin of :class:`identity.database.Tables`: every statement that must be atomic
across identity instances runs in one transaction (row locks or conditional updates), never
under an in-process lock.
"""

from __future__ import annotations

from collections.abc import Callable

from psycopg_pool import AsyncConnectionPool

from store.postgres.database import Connection, PgDatabase

__all__ = ["PgTables", "storable"]


def storable(text: str) -> bool:
    """False for a string PostgreSQL text cannot hold (NUL): no row can match it."""
    return "\x00" not in text


class PgTables(PgDatabase):
    """The pool and clock every identity table class on PostgreSQL works on."""

    def __init__(self, pool: AsyncConnectionPool[Connection], clock: Callable[[], float]) -> None:
        super().__init__(pool)
        self._clock = clock
