"""The one table of formats, and the per-format input limit both the gateway and parser use."""

from __future__ import annotations

import pytest

from schemas import (
    DOCUMENT_TYPES,
    EXTENSIONS,
    MAX_DOCUMENT_BYTES,
    MAX_TEXT_CHARS,
    TEXT_TYPES,
    max_input_bytes,
    media_type,
    type_by_extension,
)


@pytest.mark.parametrize(
    ("declared", "expected"),
    [
        ("Text/Plain; charset=UTF-8", "text/plain"),
        ("text/x-markdown", "text/markdown"),
        ("application/x-pdf", "application/pdf"),
        (None, ""),
    ],
)
def test_a_declared_type_is_reduced_to_its_canonical_media_type(
    declared: str | None, expected: str
) -> None:
    assert media_type(declared) == expected


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("notes.TEXT", "text/plain"),
        ("dir/sub\\report.Markdown", "text/markdown"),
        (".pdf", None),
        ("archive.tar.gz", None),
        ("noextension", None),
    ],
)
def test_the_extension_names_the_type(filename: str, expected: str | None) -> None:
    assert type_by_extension(filename) == expected


def test_every_extension_names_a_document_type() -> None:
    assert set(EXTENSIONS.values()) == set(DOCUMENT_TYPES)


def test_text_formats_are_bounded_by_the_output_limit_and_pdf_by_the_document_limit() -> None:
    for content_type in TEXT_TYPES:
        assert max_input_bytes(content_type) == MAX_TEXT_CHARS
    assert max_input_bytes("application/pdf") == MAX_DOCUMENT_BYTES
    assert max_input_bytes("text/plain", max_document_bytes=1000) == 1000
    assert max_input_bytes("text/csv", max_text_chars=50) == 50
