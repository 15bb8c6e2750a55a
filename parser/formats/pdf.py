"""PDF: text per page with pypdf; encrypted, oversized and broken files are refused."""

from __future__ import annotations

import io
from collections.abc import Callable
from functools import partial
from typing import TypeVar

from pypdf import PasswordType, PdfReader

from parser.errors import ParseError
from parser.extraction import Extraction, OutputBudget
from parser.limits import ParseLimits
from parser.text_cleaning import clean_text, metadata_text
from schemas.parsing import MetadataValue

__all__ = ["PAGE_SEPARATOR", "extract_pdf"]

PAGE_SEPARATOR = "\n\n"
"""What stands between two pages' text in ``ParsedDocument.text``."""

_T = TypeVar("_T")


def extract_pdf(data: bytes, limits: ParseLimits, budget: OutputBudget) -> Extraction:
    """One text part per page; metadata ``title``, ``author``, ``producer``, ``pages``.

    A PDF that needs a password is ``encrypted`` (one that opens with the empty password, as
    viewers do, is read); more than ``limits.max_pages`` pages is ``too_large``; anything pypdf
    cannot read is ``malformed``.
    """
    reader = _pypdf("cannot read the PDF", lambda: PdfReader(io.BytesIO(data), strict=False))
    if _pypdf("cannot read the PDF", lambda: reader.is_encrypted):
        _unlock(reader)
    count = _pypdf("cannot read the page tree", lambda: len(reader.pages))
    if count > limits.max_pages:
        raise ParseError("too_large", f"PDF has {count} pages, more than {limits.max_pages}")
    parts: list[str] = []
    for number in range(count):
        text = _pypdf(
            f"cannot extract the text of page {number + 1}",
            partial(_page_text, reader, number),
        )
        part = clean_text(text).rstrip()
        budget.charge(len(part) + (len(PAGE_SEPARATOR) if number else 0))
        parts.append(part)
    info = _pypdf("cannot read the document information", lambda: reader.metadata)
    metadata: dict[str, MetadataValue] = {
        "title": _info_text(info, "title"),
        "author": _info_text(info, "author"),
        "producer": _info_text(info, "producer"),
        "pages": count,
    }
    return Extraction(parts=tuple(parts), metadata=metadata, parser="pdf", paged=True)


def _page_text(reader: PdfReader, number: int) -> str:
    text: str = reader.pages[number].extract_text()
    return text


def _unlock(reader: PdfReader) -> None:
    try:
        result = reader.decrypt("")
    except MemoryError:
        raise
    except Exception as exc:
        raise ParseError("encrypted", f"PDF is encrypted and cannot be opened: {exc}") from exc
    if result == PasswordType.NOT_DECRYPTED:
        raise ParseError("encrypted", "PDF is encrypted with a password")


def _info_text(info: object, field: str) -> str | None:
    if info is None:
        return None
    value = _pypdf(f"cannot read the document {field}", lambda: getattr(info, field))
    if value is None:
        return None
    return metadata_text(str(value)) or None


def _pypdf(what: str, call: Callable[[], _T]) -> _T:
    """Run one pypdf call; whatever it raises on a broken file becomes ``malformed``.

    pypdf documents that broken files may raise any exception, so the catch is wide; it is
    never silent — the cause is chained and named in the detail. Running out of memory is
    not a property of the file's syntax and passes through.
    """
    try:
        return call()
    except (MemoryError, ParseError):
        raise
    except Exception as exc:
        raise ParseError("malformed", f"{what}: {type(exc).__name__}: {exc}") from exc
