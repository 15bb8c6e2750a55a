"""The embedded store's parse results and their full-text search (SQLite FTS5, bm25)."""

from __future__ import annotations

import builtins
from typing import Final

from store.bounds import check_search_limit
from store.errors import JobNotFound
from store.job_rows import metadata_from_json, metadata_json
from store.records import JobResult, NewResult, ResultChunk, SearchHit
from store.search_query import to_fts5_query
from store.sqlite.database import SqliteDatabase
from store.timestamps import from_micros, to_micros, utcnow

__all__ = ["SqliteResults"]

# Matched terms are wrapped in [ and ], cuts marked with … (documented on SearchHit).
_SEARCH: Final = (
    "SELECT c.job_id, j.filename, c.idx, snippet(chunks_fts, 0, '[', ']', '…', 16), "
    "bm25(chunks_fts) FROM chunks_fts JOIN result_chunks AS c ON c.id = chunks_fts.rowid "
    "JOIN jobs AS j ON j.job_id = c.job_id WHERE chunks_fts MATCH ? "
)
_SEARCH_ALL: Final = _SEARCH + "ORDER BY bm25(chunks_fts), c.id LIMIT ?"
_SEARCH_OWNER: Final = _SEARCH + "AND j.owner = ? ORDER BY bm25(chunks_fts), c.id LIMIT ?"


class SqliteResults(SqliteDatabase):
    """Results and search of ``SqliteJobStore`` (see ``store.JobStore``)."""

    __slots__ = ()

    async def store_result(self, job_id: str, result: NewResult) -> bool:
        """See ``JobStore.store_result``."""
        metadata = metadata_json(result)
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
        """See ``JobStore.get_result``."""
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
        text, metadata, pages, parser, stored_at = row
        return JobResult(
            job_id=job_id,
            text=text,
            metadata=metadata_from_json(metadata),
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
        """See ``JobStore.search``: each word a quoted FTS5 string; score is -bm25."""
        limit = check_search_limit(limit)
        expression = to_fts5_query(query)
        if expression is None:
            return []
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
