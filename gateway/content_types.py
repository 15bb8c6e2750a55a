"""Which documents an upload may be, decided from the declared type, the name and the bytes.

The tables are the parser's (``schemas.formats``) and so are the rules (``parser.detection``),
applied at the door so a wrong type is a ``415`` at once rather than a failed job later: a
generic declared type is resolved by the file extension (or the PDF magic); a PDF must start
with ``%PDF-``; text formats must be UTF-8 without NUL bytes — checked incrementally over the
whole stream as it is stored.
"""

from __future__ import annotations

import codecs
from collections.abc import Collection
from typing import Final

from gateway.errors import UnsupportedType
from schemas.formats import GENERIC_TYPES, PDF, max_input_bytes, media_type, type_by_extension

__all__ = ["PDF", "SNIFF", "ContentCheck", "resolve_content_type", "upload_limit"]

_PDF_MAGIC: Final = b"%PDF-"
SNIFF: Final = "sniff"
"""Returned by :func:`resolve_content_type` when only the bytes can tell (a possible PDF)."""


def resolve_content_type(declared: str | None, filename: str, allowed: Collection[str]) -> str:
    """The media type to check the bytes against, or :data:`SNIFF`; 415 when not allowed."""
    media = media_type(declared)
    if media in GENERIC_TYPES:
        resolved = type_by_extension(filename)
        if resolved is None:
            if PDF in allowed:
                return SNIFF
            raise UnsupportedType("cannot tell the type of this file: send its media type")
        media = resolved
    if media not in allowed:
        shown = media if len(media) <= 80 else media[:77] + "..."
        raise UnsupportedType(
            f"{shown!r} is not accepted; send one of {', '.join(sorted(allowed))}"
        )
    return media


def upload_limit(content_type: str, max_upload_bytes: int) -> int:
    """The largest file of ``content_type`` (or :data:`SNIFF`) the parser will read."""
    media = PDF if content_type == SNIFF else content_type
    return max_input_bytes(media, max_document_bytes=max_upload_bytes)


class ContentCheck:
    """Feeds on the upload's chunks and refuses bytes that are not what the type says."""

    def __init__(self, content_type: str) -> None:
        self.content_type = content_type
        self._head = b""
        self._decoder = (
            None
            if content_type in {PDF, SNIFF}
            else codecs.getincrementaldecoder("utf-8")(errors="strict")
        )

    def feed(self, chunk: bytes) -> None:
        """Check the next chunk; raises :class:`UnsupportedType`."""
        if len(self._head) < len(_PDF_MAGIC):
            self._head += chunk[: len(_PDF_MAGIC) - len(self._head)]
            self._check_head(final=False)
        if self._decoder is not None:
            if b"\x00" in chunk:
                raise UnsupportedType(f"declared as {self.content_type} but holds NUL bytes")
            try:
                self._decoder.decode(chunk)
            except UnicodeDecodeError as error:
                raise UnsupportedType(
                    f"declared as {self.content_type} but is not UTF-8 text"
                ) from error

    def finish(self) -> str:
        """The checked media type, once the whole upload was fed."""
        self._check_head(final=True)
        if self._decoder is not None:
            try:
                self._decoder.decode(b"", final=True)
            except UnicodeDecodeError as error:
                raise UnsupportedType(
                    f"declared as {self.content_type} but is not UTF-8 text"
                ) from error
        return PDF if self.content_type == SNIFF else self.content_type

    def _check_head(self, *, final: bool) -> None:
        if self.content_type not in {PDF, SNIFF}:
            return
        complete = len(self._head) >= len(_PDF_MAGIC)
        if not complete and not final:
            if not _PDF_MAGIC.startswith(self._head):
                self._refuse()
            return
        if self._head[: len(_PDF_MAGIC)] != _PDF_MAGIC:
            self._refuse()

    def _refuse(self) -> None:
        if self.content_type == SNIFF:
            raise UnsupportedType("cannot tell the type of this file: send its media type")
        raise UnsupportedType("declared as a PDF but does not start with %PDF-")
