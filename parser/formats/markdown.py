"""Markdown: the source text is the text; markdown-it-py reads its structure for metadata."""

from __future__ import annotations

from markdown_it import MarkdownIt
from markdown_it.token import Token

from parser.errors import ParseError
from parser.extraction import Extraction
from parser.text_cleaning import clean_text, metadata_text
from schemas.parsing import MetadataValue

__all__ = ["extract_markdown"]


def extract_markdown(text: str) -> Extraction:
    """The Markdown source (newlines normalised); title = first h1, plus heading/link counts."""
    cleaned = clean_text(text)
    # CommonMark caps nesting at 20 levels, so deep block quotes or lists stay shallow.
    try:
        tokens = MarkdownIt("commonmark").parse(cleaned)
    except RecursionError as exc:
        raise ParseError("malformed", "Markdown is nested too deeply") from exc
    title: str | None = None
    headings = links = images = 0
    for position, token in enumerate(tokens):
        if token.type == "heading_open":
            headings += 1
            if title is None and token.tag == "h1" and position + 1 < len(tokens):
                title = metadata_text(_plain(tokens[position + 1])) or None
        for child in token.children or ():
            if child.type == "link_open":
                links += 1
            elif child.type == "image":
                images += 1
    metadata: dict[str, MetadataValue] = {
        "title": title,
        "headings": headings,
        "links": links,
        "images": images,
    }
    return Extraction(parts=(cleaned,), metadata=metadata, parser="markdown")


def _plain(inline: Token) -> str:
    """The visible text of an inline token: text and code, without the markup."""
    pieces: list[str] = []
    for child in inline.children or ():
        if child.type in {"text", "code_inline"}:
            pieces.append(child.content)
        elif child.type in {"softbreak", "hardbreak"}:
            pieces.append(" ")
    return "".join(pieces)
