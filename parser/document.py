"""What a parse produces: the text, its metadata and the chunks that cut it up."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ChunkSpan", "MetadataValue", "ParsedDocument"]

MetadataValue = str | int | float | bool | None
"""A metadata value: always a scalar, strings at most ``schemas.limits`` long."""


@dataclass(frozen=True, slots=True)
class ChunkSpan:
    """The slice ``text[start:end]`` of a parsed document (character offsets, end exclusive).

    Chunks are numbered 0, 1, 2, … in text order, never overlap, and each begins and ends
    with a non-whitespace character; only whitespace lies between two chunks (or before the
    first and after the last). ``page`` is the 1-based page for paged formats (PDF).
    """

    index: int
    start: int
    end: int
    page: int | None


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    """A parsed document: extracted ``text``, format ``metadata``, ``chunks`` of the text."""

    text: str
    metadata: dict[str, MetadataValue]
    chunks: tuple[ChunkSpan, ...]
    pages: int | None
    parser: str
    """Which extractor produced it: ``text``, ``markdown``, ``html``, ``json``, ``csv``, ``pdf``."""
