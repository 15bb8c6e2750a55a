"""Normalisation applied to every extracted string before it leaves the parser."""

from __future__ import annotations

import re

from schemas.limits import MAX_METADATA_VALUE_CHARS

__all__ = ["clean_text", "metadata_text"]

_NEWLINES = re.compile(r"\r\n?")
_UNWANTED = re.compile("[\x00\ud800-\udfff]")
_CONTROL_OR_SPACE = re.compile(r"[\s\x00-\x1f\x7f-\x9f]+")


def clean_text(text: str) -> str:
    """Normalise newlines to ``\\n``, drop NUL and replace lone surrogates with U+FFFD.

    The result always encodes as UTF-8, so it is safe for JSON, SQLite and the wire.
    """
    text = _NEWLINES.sub("\n", text)
    if _UNWANTED.search(text) is None:
        return text
    return _UNWANTED.sub(lambda match: "" if match.group() == "\x00" else "\ufffd", text)


def metadata_text(value: str) -> str:
    """A metadata string: cleaned, on one line, whitespace collapsed, length-bounded."""
    flat = _CONTROL_OR_SPACE.sub(" ", clean_text(value)).strip()
    return flat[:MAX_METADATA_VALUE_CHARS]
