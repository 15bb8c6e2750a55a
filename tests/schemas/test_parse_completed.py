"""ParseCompleted: chunks are numbered from 0 and lie within the text (and the page count)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas import Chunk, ParseCompleted

Payload = Callable[[str], dict[str, Any]]


def _with(payload: Payload, **changes: Any) -> str:
    return json.dumps({**payload("parse.completed"), **changes})


def test_valid_chunks_are_accepted(payload: Payload) -> None:
    parsed = ParseCompleted.model_validate_json(_with(payload))
    assert [chunk.index for chunk in parsed.chunks] == [0, 1]
    assert parsed.text[parsed.chunks[0].start : parsed.chunks[0].end] == "Hello world."


def test_no_chunks_is_accepted(payload: Payload) -> None:
    assert ParseCompleted.model_validate_json(_with(payload, chunks=[])).chunks == []


def test_chunk_ending_before_it_starts_is_rejected() -> None:
    with pytest.raises(ValidationError, match="before start"):
        Chunk(index=0, start=5, end=4)


def test_empty_chunk_is_accepted() -> None:
    assert Chunk(index=0, start=3, end=3).end == 3


def test_chunk_past_the_text_is_rejected(payload: Payload) -> None:
    chunks = [{"index": 0, "start": 0, "end": 26}]
    with pytest.raises(ValidationError, match="past the text"):
        ParseCompleted.model_validate_json(_with(payload, chunks=chunks))


def test_chunk_ending_exactly_at_the_end_is_accepted(payload: Payload) -> None:
    chunks = [{"index": 0, "start": 0, "end": 25}]
    assert ParseCompleted.model_validate_json(_with(payload, chunks=chunks)).chunks[0].end == 25


def test_offsets_count_characters_not_bytes(payload: Payload) -> None:
    text = "Zoë → ünïcödé ✓"
    chunks = [{"index": 0, "start": 0, "end": len(text)}]
    parsed = ParseCompleted.model_validate_json(_with(payload, text=text, chunks=chunks))
    assert parsed.chunks[0].end == len(text) < len(text.encode())


@pytest.mark.parametrize("indexes", [[1], [0, 2], [0, 0], [1, 0], [0, 1, 1]], ids=lambda v: repr(v))
def test_non_consecutive_indexes_are_rejected(indexes: list[int], payload: Payload) -> None:
    chunks = [{"index": index, "start": 0, "end": 1} for index in indexes]
    with pytest.raises(ValidationError, match="has index"):
        ParseCompleted.model_validate_json(_with(payload, chunks=chunks))


def test_chunk_on_a_page_past_the_page_count_is_rejected(payload: Payload) -> None:
    chunks = [{"index": 0, "start": 0, "end": 1, "page": 3}]
    with pytest.raises(ValidationError, match="page 3 of 2"):
        ParseCompleted.model_validate_json(_with(payload, chunks=chunks))


def test_chunk_page_without_page_count_is_accepted(payload: Payload) -> None:
    chunks = [{"index": 0, "start": 0, "end": 1, "page": 3}]
    parsed = ParseCompleted.model_validate_json(_with(payload, chunks=chunks, pages=None))
    assert parsed.chunks[0].page == 3


def test_page_zero_is_rejected(payload: Payload) -> None:
    chunks = [{"index": 0, "start": 0, "end": 1, "page": 0}]
    with pytest.raises(ValidationError):
        ParseCompleted.model_validate_json(_with(payload, chunks=chunks))


@given(
    text=st.text(max_size=200),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=20),
)
def test_any_split_of_the_text_round_trips(text: str, cuts: list[int]) -> None:
    bounds = sorted({0, len(text), *(cut for cut in cuts if cut <= len(text))})
    chunks = [
        Chunk(index=i, start=start, end=end)
        for i, (start, end) in enumerate(itertools.pairwise(bounds))
    ]
    message = ParseCompleted(
        job_id="0" * 32,
        blob_sha256="0" * 64,
        text=text,
        metadata={},
        chunks=chunks,
        parser="text",
        duration_ms=1,
    )
    assert ParseCompleted.model_validate_json(message.model_dump_json()) == message
    assert "".join(text[c.start : c.end] for c in message.chunks) == text
