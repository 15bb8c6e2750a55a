"""Size bounds and chunking, through ``parse_bytes``."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parser import ParseError, ParseLimits, parse_bytes
from schemas import Chunk

_WHITESPACE = set(" \t\n\r\f\v")


def _reason(data: bytes, content_type: str, limits: ParseLimits) -> str:
    with pytest.raises(ParseError) as caught:
        parse_bytes(data, content_type, "upload", limits)
    return caught.value.reason


def test_oversize_input_is_too_large_before_any_parsing() -> None:
    limits = ParseLimits(max_input_bytes=10)
    # An unsupported type would say unsupported_type if detection ran first.
    assert _reason(b"\x89PNG" + b"\x00" * 10, "image/png", limits) == "too_large"
    assert parse_bytes(b"0123456789", "text/plain", "ok.txt", limits).text == "0123456789"


@pytest.mark.parametrize("content_type", ["text/plain", "text/markdown", "text/html"])
def test_text_with_more_bytes_than_the_output_cap_is_too_large_before_parsing(
    content_type: str,
) -> None:
    limits = ParseLimits(max_output_chars=100)
    with pytest.raises(ParseError) as caught:
        parse_bytes(b"x" * 101, content_type, "upload", limits)
    assert caught.value.reason == "too_large"
    assert f"larger than 100 bytes, the limit for {content_type}" in caught.value.detail
    assert parse_bytes(b"x" * 100, content_type, "upload", limits).text == "x" * 100


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00")),
    content_type=st.sampled_from(["text/plain", "text/markdown", "text/html"]),
)
def test_plain_markdown_and_html_text_is_never_longer_than_the_bytes(
    text: str, content_type: str
) -> None:
    """Why ``schemas.formats.max_input_bytes`` may bound these formats by the output cap."""
    data = text.encode()
    assert len(parse_bytes(data, content_type, "upload").text) <= len(data)


def test_json_whose_flattening_outgrows_the_cap_is_output_too_large() -> None:
    # 2 KB of input, but every leaf repeats the long path: the budget stops it early.
    document = {"k" * 200: list(range(500))}
    data = json.dumps(document).encode()
    limits = ParseLimits(max_output_chars=10_000)
    assert len(data) < 10_000
    assert _reason(data, "application/json", limits) == "output_too_large"


def test_csv_whose_rows_outgrow_the_cap_is_output_too_large() -> None:
    data = b"a,b,c,d,e,f\n" * 1000
    assert _reason(data, "text/csv", ParseLimits(max_output_chars=len(data))) == "output_too_large"


def test_more_chunks_than_allowed_is_output_too_large() -> None:
    data = b" ".join(b"word" for _ in range(100))
    limits = ParseLimits(chunk_chars=10, max_chunks=20)
    assert _reason(data, "text/plain", limits) == "output_too_large"


def test_chunks_prefer_paragraph_breaks() -> None:
    paragraph_one = "alpha beta gamma delta epsilon zeta eta theta"  # 46 chars
    paragraph_two = "iota kappa lambda mu"
    text = f"{paragraph_one}\n\n{paragraph_two}"
    doc = parse_bytes(text.encode(), "text/plain", "a.txt", ParseLimits(chunk_chars=60))
    assert [doc.text[c.start : c.end] for c in doc.chunks] == [paragraph_one, paragraph_two]


def test_a_token_longer_than_a_chunk_is_cut_hard() -> None:
    doc = parse_bytes(b"ab " + b"x" * 25, "text/plain", "a.txt", ParseLimits(chunk_chars=10))
    assert [doc.text[c.start : c.end] for c in doc.chunks] == ["ab", "x" * 10, "x" * 10, "x" * 5]


def assert_chunk_invariants(text: str, chunks: tuple[Chunk, ...], chunk_chars: int) -> None:
    """Consecutive indexes; ordered, non-empty, trimmed, bounded spans; whitespace-only gaps."""
    previous_end = 0
    for position, chunk in enumerate(chunks):
        assert chunk.index == position
        assert previous_end <= chunk.start < chunk.end <= len(text)
        assert chunk.end - chunk.start <= chunk_chars
        assert text[chunk.start] not in _WHITESPACE
        assert text[chunk.end - 1] not in _WHITESPACE
        assert set(text[previous_end : chunk.start]) <= _WHITESPACE
        previous_end = chunk.end
    assert set(text[previous_end:]) <= _WHITESPACE


_PIECES = st.one_of(
    st.sampled_from(["a", "b", "word", " ", "  ", "\n", "\n\n", "\t", "\r\n"]),
    st.characters(exclude_categories=["Cs"], exclude_characters=["\x00"]),
)
_TEXT = st.lists(_PIECES, max_size=300).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=_TEXT, chunk_chars=st.integers(min_value=1, max_value=60))
def test_chunks_cover_the_text_contiguously(text: str, chunk_chars: int) -> None:
    limits = ParseLimits(chunk_chars=chunk_chars, max_chunks=100_000)
    doc = parse_bytes(text.encode(), "text/plain", "a.txt", limits)
    assert_chunk_invariants(doc.text, doc.chunks, chunk_chars)


@settings(max_examples=50, deadline=None)
@given(
    words=st.lists(st.text(alphabet="abcdefgh", min_size=1, max_size=30), max_size=200),
    separators=st.lists(st.sampled_from([" ", "\n", "\n\n"]), min_size=200, max_size=200),
    chunk_chars=st.integers(min_value=1, max_value=80),
)
def test_chunks_only_cut_inside_words_when_a_word_is_longer_than_a_chunk(
    words: list[str], separators: list[str], chunk_chars: int
) -> None:
    text = "".join(w + s for w, s in zip(words, separators, strict=False))
    limits = ParseLimits(chunk_chars=chunk_chars, max_chunks=100_000)
    doc = parse_bytes(text.encode(), "text/plain", "a.txt", limits)
    assert_chunk_invariants(doc.text, doc.chunks, chunk_chars)
    for chunk in doc.chunks:
        piece = text[chunk.start : chunk.end]
        if chunk.end < len(text) and text[chunk.end] not in _WHITESPACE:
            # Cut inside a word: only ever a full chunk of one word longer than a chunk.
            assert len(piece) == chunk_chars
            assert not set(piece) & _WHITESPACE
            assert any(len(word) > chunk_chars and piece in word for word in words)


_HTML_PIECES = ["<p>", "<td>", "<th>", "<tr>", "<br>", "<li>", "<pre>", "</pre>", "<table>"]
_HTML_PIECES += ["&amp;", "&#10;", "&lt", "&NotNestedGreaterGreater;", "\n", " ", "x", "é", "<b>"]


@settings(max_examples=200, deadline=None)
@given(pieces=st.lists(st.sampled_from(_HTML_PIECES), max_size=60))
def test_html_made_of_tags_and_entities_is_never_longer_than_its_bytes(pieces: list[str]) -> None:
    """Breaks, cells and entities never add more characters than their markup takes."""
    data = "".join(pieces).encode()
    assert len(parse_bytes(data, "text/html", "upload").text) <= len(data)
