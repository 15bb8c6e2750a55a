"""The shared store's parse results and their full-text search (``tsvector`` + GIN).

Ranked by ``ts_rank`` normalized by length (short chunks dense in the words first, like
bm25), snippets by ``ts_headline`` with the matches in ``[`` ``]`` as on SQLite.
"""

from __future__ import annotations

import builtins
from typing import Final, LiteralString

from store.bounds import check_search_limit
from store.errors import JobNotFound
from store.job_rows import metadata_from_json, metadata_json
from store.postgres.database import PgDatabase
from store.records import JobResult, NewResult, ResultChunk, SearchHit
from store.search_query import query_terms
from store.timestamps import from_micros, to_micros, utcnow

__all__ = ["PgResults"]

# ts_headline marks matches with two control characters that the body cannot hold (they are
# removed from it first), so that the cuts can be found and marked with … as FTS5 does.
_START: Final = "\x01"
_STOP: Final = "\x02"
_HEADLINE: Final = (
    f'StartSel="{_START}", StopSel="{_STOP}", MaxWords=16, MinWords=8, ShortWord=0, MaxFragments=1'
)
_ELLIPSIS: Final = "…"
# The best ``limit`` chunks first, then a headline for those only (ts_headline is costly).
_SEARCH: Final[LiteralString] = (
    "WITH q AS (SELECT plainto_tsquery('sealflow_search', %(terms)s) AS query), "
    "best AS ("
    " SELECT c.id, c.job_id, j.filename, c.idx, translate(c.body, E'\\x01\\x02', '') AS body,"
    " ts_rank(c.words, q.query, 1) AS rank"
    " FROM result_chunks AS c JOIN jobs AS j ON j.job_id = c.job_id, q"
    " WHERE c.words @@ q.query {owner}"
    " ORDER BY rank DESC, c.id LIMIT %(limit)s) "
    "SELECT best.job_id, best.filename, best.idx,"
    " best.body, ts_headline('sealflow_search', best.body, q.query, %(headline)s), best.rank "
    "FROM best, q ORDER BY best.rank DESC, best.id"
)
_SEARCH_ALL: Final = _SEARCH.format(owner="")
_SEARCH_OWNER: Final = _SEARCH.format(owner="AND j.owner = %(owner)s")


def _snippet(headline: str, body: str) -> str:
    """``headline`` with its matches in ``[`` ``]`` and ``…`` where it cuts ``body`` (as FTS5)."""
    plain = headline.replace(_START, "").replace(_STOP, "")
    marked = headline.replace(_START, "[").replace(_STOP, "]")
    if not body.startswith(plain):
        marked = _ELLIPSIS + marked
    if not body.endswith(plain):
        marked += _ELLIPSIS
    return marked


class PgResults(PgDatabase):
    """Results and search of ``PgJobStore`` (see ``store.JobStore``)."""

    __slots__ = ()

    async def store_result(self, job_id: str, result: NewResult) -> bool:
        """See ``JobStore.store_result``."""
        chunks = sorted(result.chunks, key=lambda chunk: chunk.index)
        async with self._transaction() as conn:
            cur = await conn.execute("SELECT 1 FROM jobs WHERE job_id = %s FOR SHARE", (job_id,))
            if await cur.fetchone() is None:
                raise JobNotFound(f"no job {job_id}")
            cur = await conn.execute(
                "INSERT INTO results (job_id, text, metadata, pages, parser, stored_at) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (job_id) DO NOTHING",
                (
                    job_id,
                    result.text,
                    metadata_json(result),
                    result.pages,
                    result.parser,
                    to_micros(utcnow()),
                ),
            )
            if cur.rowcount != 1:
                return False
            async with conn.cursor() as rows:
                await rows.executemany(
                    'INSERT INTO result_chunks (job_id, idx, start, "end", page, body) '
                    "VALUES (%s, %s, %s, %s, %s, %s)",
                    [
                        (
                            job_id,
                            chunk.index,
                            chunk.start,
                            chunk.end,
                            chunk.page,
                            result.text[chunk.start : chunk.end],
                        )
                        for chunk in chunks
                    ],
                )
        return True

    async def get_result(self, job_id: str) -> JobResult | None:
        """See ``JobStore.get_result``."""
        async with self._snapshot() as conn:
            cur = await conn.execute(
                "SELECT text, metadata, pages, parser, stored_at FROM results WHERE job_id = %s",
                (job_id,),
            )
            row = await cur.fetchone()
            if row is None:
                return None
            cur = await conn.execute(
                'SELECT idx, start, "end", page FROM result_chunks WHERE job_id = %s ORDER BY idx',
                (job_id,),
            )
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
        """See ``JobStore.search``: the words ANDed by ``plainto_tsquery``; score is ts_rank."""
        limit = check_search_limit(limit)
        terms = query_terms(query)
        if not terms:
            return []
        params = {"terms": " ".join(terms), "limit": limit, "headline": _HEADLINE, "owner": owner}
        sql = _SEARCH_ALL if owner is None else _SEARCH_OWNER
        async with self._statement() as conn:
            cur = await conn.execute(sql, params)
            rows = await cur.fetchall()
        return [
            SearchHit(
                job_id=job_id,
                filename=filename,
                chunk_index=idx,
                snippet=_snippet(headline, body),
                score=float(rank),
            )
            for job_id, filename, idx, body, headline, rank in rows
        ]
