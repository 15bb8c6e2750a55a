"""Plain text: the decoded text itself, newlines normalised."""

from __future__ import annotations

from parser.extraction import Extraction
from parser.text_cleaning import clean_text

__all__ = ["extract_plain_text"]


def extract_plain_text(text: str) -> Extraction:
    """The text as is (newlines normalised) with its line count."""
    cleaned = clean_text(text)
    lines = cleaned.count("\n") + (0 if cleaned.endswith("\n") or not cleaned else 1)
    return Extraction(parts=(cleaned,), metadata={"lines": lines}, parser="text")
