"""Deciding what a blob really is: the declared type is checked against the bytes."""

from __future__ import annotations

from dataclasses import dataclass

from parser.errors import ParseError
from schemas.formats import DOCUMENT_TYPES, GENERIC_TYPES, PDF, media_type, type_by_extension

__all__ = ["SUPPORTED_TYPES", "DetectedInput", "detect_format", "detect_input"]

SUPPORTED_TYPES: frozenset[str] = frozenset(DOCUMENT_TYPES)
"""The media types the parser can extract text from."""

_PDF_MAGIC = b"%PDF-"
_UTF8_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class DetectedInput:
    """The checked media type of a blob and, for text formats, its decoded text."""

    content_type: str
    text: str | None


def detect_format(data: bytes, content_type: str, filename: str) -> str:
    """The media type (one of ``SUPPORTED_TYPES``) that ``data`` really has.

    The declared ``content_type`` is trusted only when the bytes agree: a PDF must start with
    ``%PDF-``; text formats must be UTF-8 (a BOM is allowed) without NUL bytes. A generic
    declared type (``application/octet-stream``) is resolved by the file name's extension.
    Anything else raises ``ParseError("unsupported_type")``.
    """
    return detect_input(data, content_type, filename).content_type


def detect_input(data: bytes, content_type: str, filename: str) -> DetectedInput:
    """Like ``detect_format``, also handing back the decoded text of text formats."""
    declared = media_type(content_type)
    if declared in GENERIC_TYPES:
        resolved = type_by_extension(filename)
        if resolved is None and data.startswith(_PDF_MAGIC):
            resolved = PDF
        if resolved is None:
            raise ParseError(
                "unsupported_type",
                f"cannot tell the type of {_shown(filename)} declared as {_shown(declared)}",
            )
        declared = resolved
    if declared not in SUPPORTED_TYPES:
        raise ParseError("unsupported_type", f"{_shown(declared)} is not a supported type")
    if declared == PDF:
        if not data.startswith(_PDF_MAGIC):
            raise ParseError("unsupported_type", "declared as a PDF but does not start with %PDF-")
        return DetectedInput(PDF, None)
    return DetectedInput(declared, _decode_text(data, declared))


def _decode_text(data: bytes, declared: str) -> str:
    if b"\x00" in data:
        raise ParseError("unsupported_type", f"declared as {declared} but holds NUL bytes")
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError(
            "unsupported_type", f"declared as {declared} but is not UTF-8 (byte {exc.start})"
        ) from exc


def _shown(value: str) -> str:
    return repr(value if len(value) <= 80 else value[:77] + "...")
