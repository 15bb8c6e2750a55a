"""Untrusted search strings: never FTS5 syntax, never an sqlite error (hypothesis)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from store import JobStore, NewJob, NewResult, ResultChunk, to_fts5_query

_NASTY = [
    '"',
    '""',
    '"unterminated',
    "*",
    "fox*",
    "NEAR(",
    "NEAR(fox dog, 2)",
    "AND OR NOT",
    "fox AND",
    "NOT fox",
    ":",
    "body:fox",
    "^fox",
    "\x00",
    "fox\x00dog",
    "(",
    ")",
    "{body}: fox",
    "-fox",
    "+",
    "fox + dog",
    "'; DROP TABLE jobs; --",
    "\ud800",
    "ﬁ ß İ ǅ",
    "_",
    "\u0301\u0301",
    "a" * 5000,
    " ".join(["w"] * 500),
]

_FTS_SYNTAX = st.text(alphabet=st.sampled_from(list('"*^:()+-{},. \x00NEARANDORNOTfox')))


async def _seeded(open_store: Callable[[], Awaitable[JobStore]]) -> JobStore:
    store = await open_store()
    text = 'The quick brown fox: NEAR the lazy dog AND OR NOT — ünïcödé * "quoted"'
    for owner in ("alice", "bob"):
        job = await store.create(
            NewJob(
                job_id=f"job-{owner}",
                owner=owner,
                filename="f.txt",
                content_type="text/plain",
                size=len(text),
                blob_sha256=hashlib.sha256(owner.encode()).hexdigest(),
            )
        )
        await store.store_result(
            job.job_id,
            NewResult(
                text=text,
                metadata={},
                chunks=(ResultChunk(index=0, start=0, end=len(text)),),
                pages=None,
                parser="text",
            ),
        )
    return store


@pytest.mark.parametrize("query", _NASTY)
def test_query_is_only_quoted_words(query: str) -> None:
    expression = to_fts5_query(query)
    if expression is None:
        return
    for term in expression.split(" "):
        assert term.startswith('"')
        assert term.endswith('"')
        assert '"' not in term[1:-1]
        assert term[1:-1].isalnum()


def test_search_never_raises_for_any_text(open_store: Callable[[], Awaitable[JobStore]]) -> None:
    with asyncio.Runner() as runner:
        store = runner.run(_seeded(open_store))
        try:

            @settings(max_examples=400, deadline=None)
            @given(query=st.one_of(st.text(), _FTS_SYNTAX), owner=st.sampled_from([None, "alice"]))
            def check(query: str, owner: str | None) -> None:
                hits = runner.run(store.search(owner, query))
                assert all(owner is None or hit.job_id == "job-alice" for hit in hits)

            for query in _NASTY:
                check = example(query=query, owner=None)(check)
            check()
        finally:
            runner.run(store.close())


async def test_quoted_words_still_find_their_text(
    open_store: Callable[[], Awaitable[JobStore]],
) -> None:
    store = await _seeded(open_store)
    try:
        assert {h.job_id for h in await store.search(None, 'NEAR("fox" dog)')} == {
            "job-alice",
            "job-bob",
        }
        assert [h.job_id for h in await store.search("bob", "AND OR NOT")] == ["job-bob"]
        assert [h.job_id for h in await store.search("alice", "ÜNÏCÖDÉ")] == ["job-alice"]
    finally:
        await store.close()
