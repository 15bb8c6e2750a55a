"""Format detection: the declared type is believed only when the bytes agree."""

from __future__ import annotations

import pytest

from parser import SUPPORTED_TYPES, ParseError, detect_format

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01"


def _reason(data: bytes, content_type: str, filename: str) -> str:
    with pytest.raises(ParseError) as caught:
        detect_format(data, content_type, filename)
    return caught.value.reason


@pytest.mark.parametrize(
    ("content_type", "data"),
    [
        ("text/plain", b"hello"),
        ("text/markdown", b"# hi"),
        ("text/html", b"<p>hi</p>"),
        ("application/json", b"{}"),
        ("text/csv", b"a,b"),
        ("application/pdf", b"%PDF-1.7\n"),
    ],
)
def test_declared_type_is_kept_when_the_bytes_agree(content_type: str, data: bytes) -> None:
    assert detect_format(data, content_type, "upload") == content_type
    assert content_type in SUPPORTED_TYPES


def test_parameters_and_case_of_the_declared_type_are_ignored() -> None:
    assert detect_format(b"hi", "Text/Plain; charset=UTF-8", "a") == "text/plain"


def test_aliases_map_to_the_canonical_type() -> None:
    assert detect_format(b"# x", "text/x-markdown", "a") == "text/markdown"


def test_png_declared_as_pdf_is_unsupported() -> None:
    assert _reason(PNG, "application/pdf", "picture.pdf") == "unsupported_type"


def test_binary_declared_as_text_is_unsupported() -> None:
    assert _reason(PNG, "text/plain", "notes.txt") == "unsupported_type"


def test_text_with_nul_bytes_is_unsupported() -> None:
    assert _reason(b"abc\x00def", "text/csv", "a.csv") == "unsupported_type"


def test_invalid_utf8_is_unsupported() -> None:
    assert _reason("café".encode("latin-1"), "text/plain", "a.txt") == "unsupported_type"


def test_utf8_bom_is_accepted() -> None:
    assert detect_format(b"\xef\xbb\xbf{}", "application/json", "a.json") == "application/json"


def test_unsupported_declared_type_is_refused() -> None:
    assert _reason(PNG, "image/png", "a.png") == "unsupported_type"


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("notes.md", "text/markdown"),
        ("NOTES.MARKDOWN", "text/markdown"),
        ("table.csv", "text/csv"),
        ("data.json", "application/json"),
        ("page.html", "text/html"),
        ("page.htm", "text/html"),
        ("readme.txt", "text/plain"),
        ("C:\\Users\\ann\\report.md", "text/markdown"),
    ],
)
def test_generic_declared_type_is_resolved_by_extension(filename: str, expected: str) -> None:
    assert detect_format(b"text", "application/octet-stream", filename) == expected


def test_generic_declared_type_with_pdf_magic_is_pdf() -> None:
    assert detect_format(b"%PDF-1.4\n", "application/octet-stream", "blob") == "application/pdf"


def test_generic_declared_type_with_unknown_extension_is_unsupported() -> None:
    assert _reason(b"text", "application/octet-stream", "archive.bin") == "unsupported_type"


def test_extension_never_overrides_the_byte_check() -> None:
    assert _reason(PNG, "application/octet-stream", "fake.md") == "unsupported_type"
    assert _reason(PNG, "application/octet-stream", "fake.pdf") == "unsupported_type"
