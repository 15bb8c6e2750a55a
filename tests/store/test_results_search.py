"""Results (stored once, with their search rows) and full-text search over chunks."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from store_testing import index_rows

from store import JobNotFound, JobStore, NewJob, NewResult, ResultChunk

MakeJob = Callable[..., NewJob]


def _result(*texts: str, metadata: dict[str, object] | None = None) -> NewResult:
    """A result whose chunks are the given texts, joined by blank lines."""
    chunks: list[ResultChunk] = []
    parts: list[str] = []
    offset = 0
    for index, text in enumerate(texts):
        chunks.append(
            ResultChunk(index=index, start=offset, end=offset + len(text), page=index + 1)
        )
        parts.append(text)
        offset += len(text) + 2
    return NewResult(
        text="\n\n".join(parts),
        metadata=metadata if metadata is not None else {"title": "Doc"},  # type: ignore[arg-type]
        chunks=tuple(chunks),
        pages=len(texts),
        parser="text",
    )


async def test_store_result_then_get_result_roundtrips(store: JobStore, new_job: MakeJob) -> None:
    job = await store.create(new_job())
    metadata = {"title": "Report", "pages": 2, "ratio": 0.5, "draft": False, "author": None}
    result = _result("first chunk", "second chunk", metadata=metadata)
    assert await store.store_result(job.job_id, result) is True
    stored = await store.get_result(job.job_id)
    assert stored is not None
    assert stored.job_id == job.job_id
    assert stored.text == result.text
    assert stored.metadata == metadata
    assert stored.chunks == result.chunks
    assert stored.pages == 2
    assert stored.parser == "text"
    assert stored.stored_at.tzinfo is not None


async def test_get_result_of_job_without_result_is_none(store: JobStore, new_job: MakeJob) -> None:
    job = await store.create(new_job())
    assert await store.get_result(job.job_id) is None
    assert await store.get_result("ghost") is None


async def test_store_result_twice_returns_false_and_does_not_duplicate(
    store: JobStore, new_job: MakeJob
) -> None:
    job = await store.create(new_job())
    assert await store.store_result(job.job_id, _result("unique aardvark", "more text"))
    assert await store.store_result(job.job_id, _result("other text entirely")) is False
    assert await index_rows(store) == 2
    stored = await store.get_result(job.job_id)
    assert stored is not None
    assert "aardvark" in stored.text
    assert len(await store.search(None, "aardvark")) == 1
    assert await store.search(None, "entirely") == []


async def test_store_result_for_unknown_job_raises(store: JobStore) -> None:
    with pytest.raises(JobNotFound):
        await store.store_result("ghost", _result("text"))
    assert await index_rows(store) == 0


async def test_search_finds_chunks_with_marked_snippets(store: JobStore, new_job: MakeJob) -> None:
    job = await store.create(new_job(filename="zoo.txt"))
    await store.store_result(
        job.job_id,
        _result("The quick brown fox jumps over the lazy dog.", "Nothing to see here."),
    )
    hits = await store.search("alice", "fox")
    assert len(hits) == 1
    hit = hits[0]
    assert hit.job_id == job.job_id
    assert hit.filename == "zoo.txt"
    assert hit.chunk_index == 0
    assert "[fox]" in hit.snippet
    assert hit.score > 0


async def test_search_requires_every_word(store: JobStore, new_job: MakeJob) -> None:
    job = await store.create(new_job())
    await store.store_result(job.job_id, _result("red apple", "green apple", "red pepper"))
    hits = await store.search(None, "red apple")
    assert [hit.chunk_index for hit in hits] == [0]


async def test_search_ranks_more_relevant_chunks_first(store: JobStore, new_job: MakeJob) -> None:
    weak = await store.create(new_job())
    strong = await store.create(new_job())
    filler = " ".join(f"word{i}" for i in range(60))
    await store.store_result(weak.job_id, _result(f"walrus {filler}"))
    await store.store_result(strong.job_id, _result("walrus walrus walrus in the harbour"))
    hits = await store.search(None, "walrus")
    assert [hit.job_id for hit in hits] == [strong.job_id, weak.job_id]
    assert hits[0].score > hits[1].score


async def test_search_is_isolated_by_owner(store: JobStore, new_job: MakeJob) -> None:
    mine = await store.create(new_job(owner="alice"))
    theirs = await store.create(new_job(owner="bob"))
    await store.store_result(mine.job_id, _result("shared secret word"))
    await store.store_result(theirs.job_id, _result("shared secret word"))
    assert [h.job_id for h in await store.search("alice", "secret")] == [mine.job_id]
    assert [h.job_id for h in await store.search("bob", "secret")] == [theirs.job_id]
    assert await store.search("carol", "secret") == []
    assert {h.job_id for h in await store.search(None, "secret")} == {mine.job_id, theirs.job_id}


async def test_search_is_case_and_diacritic_insensitive(store: JobStore, new_job: MakeJob) -> None:
    job = await store.create(new_job())
    await store.store_result(job.job_id, _result("Crème Brûlée RECIPE"))
    assert len(await store.search(None, "creme brulee recipe")) == 1


async def test_search_treats_operators_as_words(store: JobStore, new_job: MakeJob) -> None:
    job = await store.create(new_job())
    await store.store_result(job.job_id, _result("cats and dogs", "cats or birds"))
    # Were OR an operator, both chunks would match; as a word it needs a chunk with "or".
    assert [h.chunk_index for h in await store.search(None, "cats OR dogs")] == []
    assert [h.chunk_index for h in await store.search(None, "cats OR birds")] == [1]
    assert [h.chunk_index for h in await store.search(None, 'dogs" OR "birds')] == []


@pytest.mark.parametrize("query", ["", "   ", "\t\n", "***", '""', "()", "-", "^:"])
async def test_search_without_words_returns_nothing(store: JobStore, query: str) -> None:
    assert await store.search(None, query) == []


async def test_search_limit(store: JobStore, new_job: MakeJob) -> None:
    job = await store.create(new_job())
    await store.store_result(job.job_id, _result(*["needle in hay"] * 30))
    assert len(await store.search(None, "needle", limit=5)) == 5
    assert len(await store.search(None, "needle")) == 20
    with pytest.raises(ValueError, match="limit"):
        await store.search(None, "needle", limit=0)


async def test_delete_removes_result_and_search_rows(store: JobStore, new_job: MakeJob) -> None:
    keep = await store.create(new_job())
    gone = await store.create(new_job())
    await store.store_result(keep.job_id, _result("kept manuscript"))
    await store.store_result(gone.job_id, _result("deleted manuscript", "second chunk"))
    assert await index_rows(store) == 3
    assert await store.delete(gone.job_id) is True
    assert await store.get_result(gone.job_id) is None
    assert [h.job_id for h in await store.search(None, "manuscript")] == [keep.job_id]
    assert await store.search(None, "deleted") == []
    assert await index_rows(store) == 1


async def test_chunk_ids_are_not_confused_after_delete(store: JobStore, new_job: MakeJob) -> None:
    first = await store.create(new_job())
    await store.store_result(first.job_id, _result("alpha one", "alpha two"))
    await store.delete(first.job_id)
    second = await store.create(new_job())
    await store.store_result(second.job_id, _result("beta one", "beta two"))
    assert await store.search(None, "alpha") == []
    assert [h.chunk_index for h in await store.search(None, "beta two")] == [1]


async def test_snippets_mark_cuts_with_an_ellipsis(store: JobStore, new_job: MakeJob) -> None:
    """A snippet of a long chunk shows the match in context, with … where the text was cut."""
    job = await store.create(new_job())
    words = " ".join(f"w{i}" for i in range(40))
    await store.store_result(job.job_id, _result(f"{words} narwhal {words}", "narwhal"))
    by_chunk = {hit.chunk_index: hit.snippet for hit in await store.search(None, "narwhal")}
    assert by_chunk[1] == "[narwhal]"
    long = by_chunk[0]
    assert long.startswith("…")
    assert long.endswith("…")
    assert "[narwhal]" in long
    assert len(long) < 200


async def test_words_inside_addresses_and_names_are_found(
    store: JobStore, new_job: MakeJob
) -> None:
    """Punctuation splits words on both backends: an e-mail's, a file name's, a URL's parts."""
    job = await store.create(new_job())
    await store.store_result(
        job.job_id,
        _result("mail alice@example.com about report_final.txt at https://sealflow.dev/x"),
    )
    for query in ("alice", "example com", "report final", "txt", "sealflow dev"):
        assert [h.job_id for h in await store.search(None, query)] == [job.job_id], query
