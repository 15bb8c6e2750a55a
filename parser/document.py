"""What a parse produces: the text, its metadata and the chunks that cut it up."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.parsing import Chunk, MetadataValue

__all__ = ["ParsedDocument"]


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    """A parsed document: extracted ``text``, format ``metadata``, ``chunks`` of the text."""

    text: str
    metadata: dict[str, MetadataValue]
    chunks: tuple[Chunk, ...]
    """Chunks numbered 0, 1, 2, … in text order, never overlapping, each beginning and ending
    with a non-whitespace character; only whitespace lies between two chunks."""
    pages: int | None
    parser: str
    """Which extractor produced it: ``text``, ``markdown``, ``html``, ``json``, ``csv``, ``pdf``."""
