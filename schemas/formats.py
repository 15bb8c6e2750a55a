"""The document formats Sealflow reads: media types, their aliases and file extensions, and the
largest input of each, so that the gateway refuses at upload what the parser would refuse.

One table for the gateway's upload check, the parser's detection and the clients' guesses.
"""

from __future__ import annotations

from typing import Final

from schemas.limits import MAX_DOCUMENT_BYTES, MAX_TEXT_CHARS

__all__ = [
    "DOCUMENT_TYPES",
    "EXTENSIONS",
    "GENERIC_TYPES",
    "PDF",
    "TEXT_TYPES",
    "max_input_bytes",
    "media_type",
    "too_large_detail",
    "type_by_extension",
]

PDF: Final = "application/pdf"

TEXT_TYPES: Final = ("text/plain", "text/markdown", "text/html", "application/json", "text/csv")
"""Formats read as UTF-8 text; the parser's output grows from their characters."""

DOCUMENT_TYPES: Final = (*TEXT_TYPES, PDF)
"""Every media type the parser can extract text from, in the order a page lists them."""

GENERIC_TYPES: Final = frozenset(
    {"", "application/octet-stream", "binary/octet-stream", "application/unknown"}
)
"""Declared types that say nothing: the file name's extension (or the bytes) decide."""

_ALIASES: Final = {
    "text/x-markdown": "text/markdown",
    "application/x-pdf": PDF,
    "text/x-csv": "text/csv",
    "application/csv": "text/csv",
    "text/json": "application/json",
}

EXTENSIONS: Final = {
    ".txt": "text/plain",
    ".text": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".csv": "text/csv",
    ".json": "application/json",
    ".html": "text/html",
    ".htm": "text/html",
    ".pdf": PDF,
}
"""File extension (lower case, with its dot) → media type."""


def media_type(declared: str | None) -> str:
    """A declared ``Content-Type`` without parameters, lower case, aliases resolved."""
    media = (declared or "").split(";", 1)[0].strip().lower()
    return _ALIASES.get(media, media)


def type_by_extension(filename: str) -> str | None:
    """The media type a file name's extension names, if any (a leading dot is no extension)."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1].lower()
    dot = name.rfind(".")
    if dot <= 0:
        return None
    return EXTENSIONS.get(name[dot:])


def max_input_bytes(
    content_type: str,
    *,
    max_document_bytes: int = MAX_DOCUMENT_BYTES,
    max_text_chars: int = MAX_TEXT_CHARS,
) -> int:
    """The largest document of ``content_type`` that is read at all.

    Every format is bounded by ``max_document_bytes``; a text format also by ``max_text_chars``
    bytes, because its text has at most one character per byte (UTF-8) and extraction adds
    none for plain text, Markdown and HTML: a larger file would fail as ``output_too_large``
    after a full parse. (JSON and CSV lines can still outgrow their bytes: the parser's output
    limit stays.)
    """
    if content_type in TEXT_TYPES:
        return min(max_document_bytes, max_text_chars)
    return max_document_bytes


def too_large_detail(content_type: str, limit: int) -> str:
    """How the gateway and the parser both say that a document is over its limit."""
    return f"larger than {limit:,} bytes, the limit for {content_type} documents"
