"""The SQLite job store: jobs, their state history, parse results, and full-text search.

One writer connection (guarded by an asyncio lock, every write in a ``BEGIN IMMEDIATE``
transaction) and one read-only connection; WAL mode lets readers run while a write is in
progress, also across processes. ``busy_timeout`` lets several processes share the file.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Iterable
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final, cast

import aiosqlite

from store.errors import DuplicateJob, InvalidTransition, JobNotFound, StoreUnavailable
from store.records import (
    JOB_STATES,
    Job,
    JobEvent,
    JobResult,
    JobState,
    MetadataValue,
    NewJob,
    NewResult,
    ResultChunk,
    SearchHit,
)
from store.schema import check_fts5, migrate
from store.search_query import to_fts5_query
from store.timestamps import from_micros, to_micros, utcnow
from store.transitions import ALLOWED_FROM, TERMINAL_STATES

__all__ = ["MAX_LIST_LIMIT", "MAX_SEARCH_LIMIT", "JobStore"]

MAX_LIST_LIMIT: Final = 500
MAX_SEARCH_LIMIT: Final = 100
MAX_DETAIL_CHARS: Final = 4_000
MAX_REASON_CHARS: Final = 128
MAX_KEY_CHARS: Final = 512
DEFAULT_BUSY_TIMEOUT_MS: Final = 5_000

_SELECT_JOB: Final = (
    "SELECT job_id, owner, filename, content_type, size, blob_sha256, state, "
    "created_at, updated_at, finished_at, error_reason, error_detail, trace FROM jobs "
)
_GET_JOB: Final = _SELECT_JOB + "WHERE job_id = ?"
# Newest first; ``created_at`` is unique per database, so it is an exact paging cursor.
_NEWEST_FIRST: Final = "created_at < ? ORDER BY created_at DESC LIMIT ?"
_LIST_JOBS: Final = {
    (False, False): _SELECT_JOB + "WHERE " + _NEWEST_FIRST,
    (True, False): _SELECT_JOB + "WHERE owner = ? AND " + _NEWEST_FIRST,
    (False, True): _SELECT_JOB + "WHERE state = ? AND " + _NEWEST_FIRST,
    (True, True): _SELECT_JOB + "WHERE owner = ? AND state = ? AND " + _NEWEST_FIRST,
}
# Matched terms are wrapped in [ and ], cuts marked with … (documented on SearchHit).
_SEARCH: Final = (
    "SELECT c.job_id, j.filename, c.idx, snippet(chunks_fts, 0, '[', ']', '…', 16), "
    "bm25(chunks_fts) FROM chunks_fts JOIN result_chunks AS c ON c.id = chunks_fts.rowid "
    "JOIN jobs AS j ON j.job_id = c.job_id WHERE chunks_fts MATCH ? "
)
_SEARCH_ALL: Final = _SEARCH + "ORDER BY bm25(chunks_fts), c.id LIMIT ?"
_SEARCH_OWNER: Final = _SEARCH + "AND j.owner = ? ORDER BY bm25(chunks_fts), c.id LIMIT ?"

_NO_UPPER_BOUND: Final = 2**63 - 1


def _bounded_detail(detail: str | None) -> str | None:
    """Free-text detail is often untrusted (error messages): cap it and make it valid UTF-8."""
    if detail is None:
        return None
    if len(detail) > MAX_DETAIL_CHARS:
        detail = detail[: MAX_DETAIL_CHARS - 1] + "…"
    return detail.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")


def _job_from_row(row: Iterable[Any]) -> Job:
    (
        job_id,
        owner,
        filename,
        content_type,
        size,
        blob_sha256,
        state,
        created_at,
        updated_at,
        finished_at,
        error_reason,
        error_detail,
        trace,
    ) = row
    return Job(
        job_id=job_id,
        owner=owner,
        filename=filename,
        content_type=content_type,
        size=size,
        blob_sha256=blob_sha256,
        state=cast(JobState, state),
        created_at=from_micros(created_at),
        updated_at=from_micros(updated_at),
        finished_at=None if finished_at is None else from_micros(finished_at),
        error_reason=error_reason,
        error_detail=error_detail,
        trace=trace,
    )


async def _connect(path: Path, *, busy_timeout_ms: int, read_only: bool) -> aiosqlite.Connection:
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


class JobStore:
    """Jobs, state history, results and search in one SQLite file. Use :meth:`open`."""

    __slots__ = ("_read_lock", "_reader", "_write_lock", "_writer", "path")

    def __init__(
        self, path: Path, writer: aiosqlite.Connection, reader: aiosqlite.Connection
    ) -> None:
        self.path = path
        self._writer = writer
        self._reader = reader
        self._write_lock = asyncio.Lock()
        self._read_lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> JobStore:
        """Open (creating and migrating if needed) the database at ``path``.

        Raises ``StoreUnavailable`` if SQLite lacks FTS5 or the file's schema is newer.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = await _connect(path, busy_timeout_ms=busy_timeout_ms, read_only=False)
        try:
            await check_fts5(writer)
            async with writer.execute("PRAGMA journal_mode = WAL") as cursor:
                row = await cursor.fetchone()
            if row is None or str(row[0]).lower() != "wal":
                raise StoreUnavailable(
                    f"could not switch {path} to WAL mode", reason="wal_unavailable"
                )
            await migrate(writer)
            reader = await _connect(path, busy_timeout_ms=busy_timeout_ms, read_only=True)
        except BaseException:
            await writer.close()
            raise
        return cls(path, writer, reader)

    async def close(self) -> None:
        """Close both connections; the store cannot be used afterwards."""
        try:
            await self._reader.close()
        finally:
            await self._writer.close()

    async def __aenter__(self) -> JobStore:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

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

    # -- jobs -------------------------------------------------------------------------------

    async def create(self, job: NewJob) -> Job:
        """Record a new ``queued`` job; raises ``DuplicateJob`` if its id is taken."""
        now = to_micros(utcnow())
        async with self._write() as db:
            async with db.execute("SELECT 1 FROM jobs WHERE job_id = ?", (job.job_id,)) as cur:
                if await cur.fetchone() is not None:
                    raise DuplicateJob(f"job {job.job_id} already exists")
            async with db.execute("SELECT MAX(created_at) FROM jobs") as cur:
                row = await cur.fetchone()
            latest = row[0] if row is not None else None
            # Strictly increasing per database, so "newest first" and paging are exact.
            created = now if latest is None else max(now, int(latest) + 1)
            await db.execute(
                "INSERT INTO jobs (job_id, owner, filename, content_type, size, blob_sha256, "
                "state, created_at, updated_at, trace) "
                "VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?)",
                (
                    job.job_id,
                    job.owner,
                    job.filename,
                    job.content_type,
                    job.size,
                    job.blob_sha256,
                    created,
                    created,
                    job.trace,
                ),
            )
            await db.execute(
                "INSERT INTO job_events (job_id, state, at, detail) VALUES (?, 'queued', ?, NULL)",
                (job.job_id, created),
            )
        at = from_micros(created)
        return Job(
            job_id=job.job_id,
            owner=job.owner,
            filename=job.filename,
            content_type=job.content_type,
            size=job.size,
            blob_sha256=job.blob_sha256,
            state="queued",
            created_at=at,
            updated_at=at,
            finished_at=None,
            error_reason=None,
            error_detail=None,
            trace=job.trace,
        )

    async def get(self, job_id: str) -> Job | None:
        """The job with this id, or None."""
        async with self._read() as db, db.execute(_GET_JOB, (job_id,)) as cur:
            row = await cur.fetchone()
        return None if row is None else _job_from_row(row)

    async def list(
        self,
        *,
        owner: str | None,
        state: JobState | None = None,
        limit: int = 50,
        before: datetime | None = None,
    ) -> builtins.list[Job]:
        """Jobs newest first: ``owner`` None means everyone's (admin); ``before`` pages.

        ``limit`` is capped at ``MAX_LIST_LIMIT``; ``before`` must be timezone-aware.
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if state is not None and state not in JOB_STATES:
            raise ValueError(f"unknown job state {state!r}")
        limit = min(limit, MAX_LIST_LIMIT)
        upper = _NO_UPPER_BOUND if before is None else to_micros(before)
        filters = [value for value in (owner, state) if value is not None]
        params: tuple[object, ...] = (*filters, upper, limit)
        sql = _LIST_JOBS[(owner is not None, state is not None)]
        async with self._read() as db, db.execute(sql, params) as cur:
            rows = await cur.fetchall()
        return [_job_from_row(row) for row in rows]

    async def delete(self, job_id: str) -> bool:
        """Remove a job with its events, result and search rows; True if it existed."""
        async with self._write() as db:
            await db.execute(
                "DELETE FROM chunks_fts WHERE rowid IN "
                "(SELECT id FROM result_chunks WHERE job_id = ?)",
                (job_id,),
            )
            # events, the result and its chunks go by ON DELETE CASCADE.
            async with db.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,)) as cur:
                return cur.rowcount == 1

    async def blob_in_use(self, blob_sha256: str) -> bool:
        """Whether any recorded job names this blob (so it must not be deleted)."""
        async with (
            self._read() as db,
            db.execute("SELECT 1 FROM jobs WHERE blob_sha256 = ? LIMIT 1", (blob_sha256,)) as cur,
        ):
            return await cur.fetchone() is not None

    # -- state ------------------------------------------------------------------------------

    async def transition(
        self,
        job_id: str,
        to: JobState,
        *,
        detail: str | None = None,
        error_reason: str | None = None,
    ) -> bool:
        """Move a job to state ``to`` and record the event.

        True if it moved; False if it already was in ``to`` (a redelivery); raises
        ``InvalidTransition`` from any other state and ``JobNotFound``. On ``failed``,
        ``error_reason`` and ``detail`` are kept on the job (``detail`` capped in length).
        """
        if to not in JOB_STATES:
            raise ValueError(f"unknown job state {to!r}")
        if error_reason is not None:
            if to != "failed":
                raise ValueError("error_reason is only for a transition to failed")
            if not error_reason or len(error_reason) > MAX_REASON_CHARS:
                raise ValueError(f"error_reason must be 1 to {MAX_REASON_CHARS} characters")
        detail = _bounded_detail(detail)
        allowed = ALLOWED_FROM[to]
        now = to_micros(utcnow())
        finished = now if to in TERMINAL_STATES else None
        async with self._write() as db:
            changed = False
            if allowed:
                first, second = allowed[0], allowed[-1]
                async with db.execute(
                    "UPDATE jobs SET state = ?, updated_at = MAX(?, created_at), "
                    "finished_at = MAX(?, created_at), error_reason = ?, error_detail = ? "
                    "WHERE job_id = ? AND state IN (?, ?)",
                    (
                        to,
                        now,
                        finished,
                        error_reason,
                        detail if to == "failed" else None,
                        job_id,
                        first,
                        second,
                    ),
                ) as cur:
                    changed = cur.rowcount == 1
            if changed:
                await db.execute(
                    "INSERT INTO job_events (job_id, state, at, detail) VALUES "
                    "(?, ?, (SELECT updated_at FROM jobs WHERE job_id = ?), ?)",
                    (job_id, to, job_id, detail),
                )
                return True
            async with db.execute("SELECT state FROM jobs WHERE job_id = ?", (job_id,)) as cur:
                row = await cur.fetchone()
        if row is None:
            raise JobNotFound(f"no job {job_id}")
        if row[0] == to:
            return False
        raise InvalidTransition(f"job {job_id} is {row[0]} and cannot become {to}")

    async def events(self, job_id: str) -> builtins.list[JobEvent]:
        """The job's state history, oldest first (empty for an unknown job)."""
        async with (
            self._read() as db,
            db.execute(
                "SELECT state, at, detail FROM job_events WHERE job_id = ? ORDER BY id",
                (job_id,),
            ) as cur,
        ):
            rows = await cur.fetchall()
        return [
            JobEvent(job_id=job_id, state=cast(JobState, state), at=from_micros(at), detail=detail)
            for state, at, detail in rows
        ]

    # -- results and search -----------------------------------------------------------------

    async def store_result(self, job_id: str, result: NewResult) -> bool:
        """Store a job's result and index its chunks, all in one transaction.

        True if stored now; False if the job already had a result (a redelivered message),
        in which case nothing changes. Raises ``JobNotFound``.
        """
        metadata = json.dumps(dict(result.metadata), ensure_ascii=False, allow_nan=False)
        chunks = sorted(result.chunks, key=lambda chunk: chunk.index)
        now = to_micros(utcnow())
        async with self._write() as db:
            async with db.execute("SELECT 1 FROM jobs WHERE job_id = ?", (job_id,)) as cur:
                if await cur.fetchone() is None:
                    raise JobNotFound(f"no job {job_id}")
            async with db.execute(
                "INSERT OR IGNORE INTO results (job_id, text, metadata, pages, parser, stored_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (job_id, result.text, metadata, result.pages, result.parser, now),
            ) as cur:
                if cur.rowcount != 1:
                    return False
            async with db.execute("SELECT COALESCE(MAX(id), 0) FROM result_chunks") as cur:
                row = await cur.fetchone()
            # Explicit ids (safe under the write lock) let the FTS rowid equal the chunk id.
            base = int(row[0]) if row is not None else 0
            await db.executemany(
                'INSERT INTO result_chunks (id, job_id, idx, start, "end", page) '
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (base + n, job_id, chunk.index, chunk.start, chunk.end, chunk.page)
                    for n, chunk in enumerate(chunks, start=1)
                ],
            )
            await db.executemany(
                "INSERT INTO chunks_fts (rowid, body) VALUES (?, ?)",
                [
                    (base + n, result.text[chunk.start : chunk.end])
                    for n, chunk in enumerate(chunks, start=1)
                ],
            )
        return True

    async def get_result(self, job_id: str) -> JobResult | None:
        """The job's stored result, or None if there is none (yet)."""
        async with self._read() as db:
            async with db.execute(
                "SELECT text, metadata, pages, parser, stored_at FROM results WHERE job_id = ?",
                (job_id,),
            ) as cur:
                row = await cur.fetchone()
            if row is None:
                return None
            async with db.execute(
                'SELECT idx, start, "end", page FROM result_chunks WHERE job_id = ? ORDER BY idx',
                (job_id,),
            ) as cur:
                chunk_rows = await cur.fetchall()
        text, metadata_json, pages, parser, stored_at = row
        metadata = cast(dict[str, MetadataValue], json.loads(metadata_json))
        return JobResult(
            job_id=job_id,
            text=text,
            metadata=metadata,
            chunks=tuple(
                ResultChunk(index=idx, start=start, end=end, page=page)
                for idx, start, end, page in chunk_rows
            ),
            pages=pages,
            parser=parser,
            stored_at=from_micros(stored_at),
        )

    async def search(
        self, owner: str | None, query: str, *, limit: int = 20
    ) -> builtins.list[SearchHit]:
        """Chunks matching every word of ``query``, best first (bm25), from ``owner``'s jobs.

        ``owner`` None searches everyone's (admin). ``query`` is untrusted: only its words
        are used, each as a quoted FTS5 string, so no input is FTS5 syntax (see
        ``store.search_query``). A query without words gives ``[]``. ``limit`` is capped at
        ``MAX_SEARCH_LIMIT``. Snippets mark matches with ``[`` and ``]`` (see ``SearchHit``).
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        expression = to_fts5_query(query)
        if expression is None:
            return []
        limit = min(limit, MAX_SEARCH_LIMIT)
        params: tuple[object, ...]
        if owner is None:
            sql, params = _SEARCH_ALL, (expression, limit)
        else:
            sql, params = _SEARCH_OWNER, (expression, owner, limit)
        async with self._read() as db, db.execute(sql, params) as cur:
            rows = await cur.fetchall()
        return [
            SearchHit(
                job_id=job_id,
                filename=filename,
                chunk_index=idx,
                snippet=snippet,
                score=-float(rank),
            )
            for job_id, filename, idx, snippet, rank in rows
        ]

    # -- idempotency ------------------------------------------------------------------------

    async def was_processed(self, key: str) -> bool:
        """True if :meth:`mark_processed` has recorded ``key`` (an event already sent)."""
        if not key or len(key) > MAX_KEY_CHARS:
            raise ValueError(f"key must be 1 to {MAX_KEY_CHARS} characters")
        async with (
            self._read() as db,
            db.execute("SELECT 1 FROM processed_keys WHERE key = ?", (key,)) as cur,
        ):
            return await cur.fetchone() is not None

    async def mark_processed(self, key: str) -> bool:
        """Remember a consumer's idempotency key; True the first time it is seen."""
        if not key or len(key) > MAX_KEY_CHARS:
            raise ValueError(f"key must be 1 to {MAX_KEY_CHARS} characters")
        async with (
            self._write() as db,
            db.execute(
                "INSERT OR IGNORE INTO processed_keys (key, at) VALUES (?, ?)",
                (key, to_micros(utcnow())),
            ) as cur,
        ):
            return cur.rowcount == 1
