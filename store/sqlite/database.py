"""SQLite connections of the embedded job store: one writer, one reader, whole transactions.

One writer connection (guarded by an asyncio lock, every write in a ``BEGIN IMMEDIATE``
transaction) and one read-only connection; WAL mode lets readers run while a write is in
progress, also across processes. ``busy_timeout`` lets several processes share the file.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any, Final

import aiosqlite

from keys.filemodes import private_database
from store.blobs import BlobStore

__all__ = ["DEFAULT_BUSY_TIMEOUT_MS", "SqliteDatabase", "connect"]

DEFAULT_BUSY_TIMEOUT_MS: Final = 5_000


async def connect(path: Path, *, busy_timeout_ms: int, read_only: bool) -> aiosqlite.Connection:
    """A connection with the store's pragmas (no implicit transactions, FULL sync).

    The writer makes the database file 0600 in a 0700 directory before SQLite opens it.
    """
    if not read_only:
        private_database(path)
    # isolation_level=None: no implicit transactions; every write path issues its own BEGIN.
    db = await aiosqlite.connect(path, isolation_level=None)
    try:
        await db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        await db.execute("PRAGMA foreign_keys = ON")
        await db.execute("PRAGMA synchronous = FULL")
        if read_only:
            await db.execute("PRAGMA query_only = ON")
    except BaseException:
        await db.close()
        raise
    return db


async def _settle(statement: Awaitable[Any]) -> None:
    """Run a transaction statement to its end even when the caller is cancelled meanwhile.

    aiosqlite runs a statement in its thread whether or not its awaiter is still there: a
    request cancelled (client gone) between ``BEGIN`` and ``COMMIT`` would otherwise leave
    the connection inside a transaction, and every later ``BEGIN`` would fail. The
    cancellation is delivered once the statement is done.
    """
    task = asyncio.ensure_future(statement)
    cancelled = False
    while True:
        try:
            await asyncio.shield(task)
            break
        except asyncio.CancelledError:
            cancelled = True
            if task.done():
                break
    if cancelled:
        task.result()
        raise asyncio.CancelledError


class SqliteDatabase:
    """The two connections and the blob files; the parts of ``SqliteJobStore`` build on it."""

    __slots__ = ("_read_lock", "_reader", "_write_lock", "_writer", "blobs", "path")

    def __init__(
        self,
        path: Path,
        writer: aiosqlite.Connection,
        reader: aiosqlite.Connection,
        blobs: BlobStore,
    ) -> None:
        self.path = path
        self.blobs = blobs
        self._writer = writer
        self._reader = reader
        self._write_lock = asyncio.Lock()
        self._read_lock = asyncio.Lock()

    async def close(self) -> None:
        """Close both connections; the store cannot be used afterwards."""
        try:
            await self._reader.close()
        finally:
            await self._writer.close()

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction: committed when the block ends, rolled back if it raises."""
        async with self._write_lock:
            db = self._writer
            try:
                await _settle(db.execute("BEGIN IMMEDIATE"))
                yield db
                await _settle(db.execute("COMMIT"))
            except BaseException:
                if db.in_transaction:
                    await _settle(db.execute("ROLLBACK"))
                raise

    @contextlib.asynccontextmanager
    async def _read(self) -> AsyncIterator[aiosqlite.Connection]:
        """A read snapshot: every statement in the block sees the same committed state."""
        async with self._read_lock:
            db = self._reader
            try:
                await _settle(db.execute("BEGIN"))
                yield db
            finally:
                if db.in_transaction:
                    await _settle(db.execute("COMMIT"))
