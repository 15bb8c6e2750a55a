"""SQLite connections of the embedded job store: one writer, one reader, group commit.

One writer connection and one read-only connection; WAL mode lets readers run while a write is
in progress, also across processes. ``busy_timeout`` lets several processes share the file.
Concurrent writes share one ``BEGIN IMMEDIATE`` transaction (group commit): each write runs in
its own savepoint, and the batch commits (one WAL fsync, ``synchronous = FULL``) when no other
write is waiting or ``GROUP_COMMIT_MAX`` writes are in it. A write returns only after that
commit, so it is durable when its caller answers 202 or acks.
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

__all__ = ["DEFAULT_BUSY_TIMEOUT_MS", "GROUP_COMMIT_MAX", "SqliteDatabase", "connect"]

DEFAULT_BUSY_TIMEOUT_MS: Final = 5_000
GROUP_COMMIT_MAX: Final = 128
"""Most writes one transaction takes before it commits, so a steady stream still commits."""


async def connect(path: Path, *, busy_timeout_ms: int, read_only: bool) -> aiosqlite.Connection:
    """A connection with the store's pragmas (no implicit transactions, FULL sync).

    ``synchronous = FULL`` stays: in WAL mode it fsyncs the WAL at every commit, and NORMAL
    would let a power loss take back commits already answered 202 or acked. Group commit
    (``SqliteDatabase._write``) pays that fsync once per batch of concurrent writes instead.

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


class _Batch:
    """One group-commit transaction: how many writes it holds, and their shared outcome."""

    __slots__ = ("done", "size")

    def __init__(self) -> None:
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # A batch whose waiters were all cancelled must not warn that its error went unread.
        self.done.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.size = 0


class SqliteDatabase:
    """The two connections and the blob files; the parts of ``SqliteJobStore`` build on it."""

    __slots__ = (
        "_batch",
        "_flushes",
        "_read_lock",
        "_reader",
        "_write_lock",
        "_writer",
        "_writers",
        "blobs",
        "path",
    )

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
        self._batch: _Batch | None = None
        self._writers = 0  # writes entered and not finished, holding the lock or waiting for it
        self._flushes: set[asyncio.Task[None]] = set()

    async def close(self) -> None:
        """Commit an open batch, then close both connections; the store is unusable after."""
        try:
            async with self._write_lock:
                if self._batch is not None:
                    await _settle(self._commit(self._batch))
        finally:
            await self._close_connections()

    async def _close_connections(self) -> None:
        try:
            await self._reader.close()
        finally:
            await self._writer.close()

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write in the current group-commit batch, durable when the block's caller resumes.

        The block runs in a savepoint of the shared transaction: if it raises, only its own
        statements are rolled back. On leaving, the batch is committed when no other write
        waits (or it is full); otherwise the next write carries it on. Either way this write
        waits for that commit, and raises its error (or the commit's) only then.
        """
        self._writers += 1
        batch: _Batch | None = None
        try:
            try:
                await self._write_lock.acquire()
            except BaseException:
                self._writers -= 1
                if self._writers == 0 and self._batch is not None:
                    # Cancelled while waiting, and the writes before this one counted on it.
                    self._flush_later()
                raise
            try:
                batch = await self._join_batch()
                failed = True
                try:
                    yield self._writer
                    failed = False
                finally:
                    await _settle(self._leave_batch(batch, failed=failed))
            finally:
                self._writers -= 1
                self._write_lock.release()
        finally:
            if batch is not None:
                await batch.done  # the commit's error, if any, wins over the block's

    async def _join_batch(self) -> _Batch:
        """Open a batch if none is, then this write's savepoint in it (the lock is held)."""
        task = asyncio.ensure_future(self._open_savepoint())
        try:
            await _settle(task)
        except asyncio.CancelledError:
            # The savepoint is open (it ran to its end): close it as a failed write, give way.
            await _settle(self._leave_batch(task.result(), failed=True))
            raise
        return task.result()

    async def _open_savepoint(self) -> _Batch:
        db = self._writer
        if self._batch is None:
            await db.execute("BEGIN IMMEDIATE")
            self._batch = _Batch()
        batch = self._batch
        try:
            await db.execute("SAVEPOINT write")
        except BaseException as exc:
            await self._abort(batch, exc)
            raise
        return batch

    async def _leave_batch(self, batch: _Batch, *, failed: bool) -> None:
        """Release (or roll back) this write's savepoint; commit if it is the last one waiting."""
        db = self._writer
        try:
            if failed:
                await db.execute("ROLLBACK TO write")
            await db.execute("RELEASE write")
        except BaseException as exc:
            await self._abort(batch, exc)
            raise
        batch.size += 1
        if self._writers <= 1 or batch.size >= GROUP_COMMIT_MAX:
            await self._commit(batch)

    async def _commit(self, batch: _Batch) -> None:
        self._batch = None
        try:
            await self._writer.execute("COMMIT")
        except BaseException as exc:
            await self._abort(batch, exc)
            raise
        if not batch.done.done():
            batch.done.set_result(None)

    async def _abort(self, batch: _Batch, error: BaseException) -> None:
        """Roll the whole batch back and fail every write in it with ``error``."""
        if self._batch is batch:
            self._batch = None
        try:
            if self._writer.in_transaction:
                await self._writer.execute("ROLLBACK")
        finally:
            if not batch.done.done():
                batch.done.set_exception(error)

    def _flush_later(self) -> None:
        task = asyncio.ensure_future(self._flush())
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _flush(self) -> None:
        """Commit a batch left open by writes that are all gone (no writer will come back)."""
        async with self._write_lock:
            if self._batch is not None and self._writers == 0:
                await _settle(self._commit(self._batch))

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
