"""Cutting extracted text into chunks of about ``chunk_chars`` characters.

A chunk ends at the last paragraph break (blank line) in the second half of its window,
else at the last line break there, else at the last whitespace anywhere in it; a run of
more than ``chunk_chars`` characters without whitespace (a long token, CJK prose) is cut
hard. Chunks are trimmed: whitespace between them belongs to no chunk, so the chunks
together with the whitespace gaps cover the text exactly, and every chunk is at most
``chunk_chars`` long.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from parser.errors import ParseError
from schemas.parsing import Chunk

__all__ = ["Region", "chunk_regions"]

WHITESPACE = " \t\n\r\f\v"
_NON_WHITESPACE = re.compile(r"[^ \t\n\r\f\v]")


@dataclass(frozen=True, slots=True)
class Region:
    """A stretch ``text[start:end]`` chunked on its own (one PDF page, or the whole text)."""

    start: int
    end: int
    page: int | None = None


def chunk_regions(
    text: str, regions: Sequence[Region], *, chunk_chars: int, max_chunks: int
) -> tuple[Chunk, ...]:
    """Chunk each region of ``text`` in turn; more than ``max_chunks`` is ``output_too_large``."""
    chunks: list[Chunk] = []
    for region in regions:
        position = region.start
        while True:
            found = _NON_WHITESPACE.search(text, position, region.end)
            if found is None:
                break
            position = found.start()
            window_end = position + chunk_chars
            cut = region.end if window_end >= region.end else _cut(text, position, window_end)
            stop = position + len(text[position:cut].rstrip(WHITESPACE))
            if len(chunks) >= max_chunks:
                raise ParseError("output_too_large", f"text needs more than {max_chunks} chunks")
            chunks.append(Chunk(index=len(chunks), start=position, end=stop, page=region.page))
            position = cut
    return tuple(chunks)


def _cut(text: str, start: int, window_end: int) -> int:
    """Where the chunk starting at ``start`` should end, at most ``window_end``.

    ``text[window_end]`` exists; the answer is a whitespace position after ``start``, or
    ``window_end`` itself when the window holds no whitespace at all.
    """
    half = start + max(1, (window_end - start) // 2)
    paragraph = text.rfind("\n\n", half, window_end + 1)
    if paragraph > start:
        return paragraph
    line = text.rfind("\n", half, window_end + 1)
    if line > start:
        return line
    space = max(text.rfind(char, start + 1, window_end + 1) for char in WHITESPACE)
    if space > start:
        return space
    return window_end
