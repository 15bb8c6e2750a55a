"""The PostgreSQL connection pool of the shared store, and its transactions.

psycopg 3 with ``psycopg_pool``: an async pool of libpq connections in autocommit mode. A
method of the store that needs one statement sends just it (one round trip); one that needs
several runs them in an explicit transaction, or a read-only repeatable-read snapshot. A
cancelled caller's connection is rolled back (or discarded, if it broke) by the pool before
anyone reuses it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Final

import psycopg
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from store.errors import StoreUnavailable
from store.postgres.migrations import SCHEMA_VERSION, migrate, schema_version

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_POOL_MAX",
    "Connection",
    "PgDatabase",
    "open_pool",
    "unavailable",
]

DEFAULT_POOL_MAX: Final = 10
DEFAULT_CONNECT_TIMEOUT: Final = 10.0

Connection = psycopg.AsyncConnection[TupleRow]


@contextlib.asynccontextmanager
async def unavailable() -> AsyncIterator[None]:
    """Turn a driver or network error in the block into ``StoreUnavailable`` (no URL in it)."""
    try:
        yield
    except (psycopg.Error, OSError) as exc:
        raise StoreUnavailable(
            f"PostgreSQL is not usable: {type(exc).__name__}: {exc}", reason="database_down"
        ) from exc


async def open_pool(
    url: str,
    *,
    max_size: int = DEFAULT_POOL_MAX,
    timeout: float = DEFAULT_CONNECT_TIMEOUT,
    upgrade: bool | None = True,
) -> AsyncConnectionPool[Connection]:
    """An open pool to ``url``; its schema migrated (``upgrade`` True), checked (False) or not
    looked at (None).

    Raises ``StoreUnavailable`` when the server cannot be reached in ``timeout`` seconds or
    the schema is newer than this code (or, with ``upgrade`` False, not this code's).
    """
    pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
        url,
        min_size=1,
        max_size=max_size,
        timeout=timeout,
        open=False,
        name="sealflow-store",
        kwargs={"autocommit": True},
    )
    try:
        async with unavailable():
            await pool.open(wait=True, timeout=timeout)
            if upgrade is not None:
                async with pool.connection() as conn:
                    await _prepare_schema(conn, upgrade=upgrade)
    except BaseException:
        await pool.close()
        raise
    return pool


async def _prepare_schema(conn: Connection, *, upgrade: bool) -> None:
    """Migrate, or with ``upgrade`` False refuse any version but this code's."""
    if upgrade:
        await migrate(conn)
        return
    found = await schema_version(conn)
    await conn.rollback()
    if found != SCHEMA_VERSION:
        raise StoreUnavailable(
            f"database schema is at version {found}, this code needs {SCHEMA_VERSION}: "
            "run `sealflow db upgrade`",
            reason="schema_mismatch",
        )


class PgDatabase:
    """The pool; the parts of ``PgJobStore`` build on it."""

    __slots__ = ("pool",)

    def __init__(self, pool: AsyncConnectionPool[Connection]) -> None:
        self.pool = pool

    async def close(self) -> None:
        """Close the pool; the store cannot be used afterwards."""
        await self.pool.close()

    @contextlib.asynccontextmanager
    async def _statement(self) -> AsyncIterator[Connection]:
        """A connection for one statement, atomic on its own (autocommit)."""
        async with self.pool.connection() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Connection]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        async with self.pool.connection() as conn, conn.transaction():
            yield conn

    @contextlib.asynccontextmanager
    async def _snapshot(self) -> AsyncIterator[Connection]:
        """A read-only transaction whose statements all see the same committed state."""
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield conn
