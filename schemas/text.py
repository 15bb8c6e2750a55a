"""Bounded free-text types: what humans read in failures, audit events and control messages."""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import StringConstraints

from schemas.limits import MAX_DETAIL_CHARS

__all__ = ["Detail", "Label", "ShortText"]

_PRINTABLE: Final = r"[^\p{C}\p{Zl}\p{Zp}]"

Detail = Annotated[
    str,
    StringConstraints(max_length=MAX_DETAIL_CHARS, pattern=r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"),
]
"""A human-readable detail, ≤ 1000 characters; tabs and newlines allowed, other control
characters (terminal escapes) rejected because operators read these in a terminal."""

Label = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=rf"^{_PRINTABLE}+$")]
"""A short printable label such as an audit action: 1..64 characters."""

ShortText = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=rf"^{_PRINTABLE}+$")
]
"""A one-line printable text of 1..200 characters, e.g. why a key was revoked."""
