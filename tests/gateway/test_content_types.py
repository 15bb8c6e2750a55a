"""What an upload may be: the declared type, checked against the name and the bytes."""

from __future__ import annotations

import pytest

from gateway.content_types import SNIFF, ContentCheck, resolve_content_type
from gateway.errors import UnsupportedType
from gateway.settings import DEFAULT_CONTENT_TYPES


@pytest.mark.parametrize(
    ("declared", "filename", "expected"),
    [
        ("text/plain", "a.txt", "text/plain"),
        ("Text/Markdown; charset=utf-8", "a", "text/markdown"),
        ("text/x-markdown", "a", "text/markdown"),
        ("application/x-pdf", "a", "application/pdf"),
        ("application/csv", "a", "text/csv"),
        ("text/json", "a", "application/json"),
        ("application/octet-stream", "a.HTML", "text/html"),
        (None, "a.csv", "text/csv"),
        ("", "noext", SNIFF),
        ("application/octet-stream", "a.exe", SNIFF),  # only the PDF magic can save it
    ],
)
def test_resolution(declared: str | None, filename: str, expected: str) -> None:
    assert resolve_content_type(declared, filename, DEFAULT_CONTENT_TYPES) == expected


@pytest.mark.parametrize(
    ("declared", "filename"),
    [("image/png", "a.png"), ("application/zip", "a.txt"), ("text/rtf", "a.txt")],
)
def test_refused_types(declared: str, filename: str) -> None:
    with pytest.raises(UnsupportedType):
        resolve_content_type(declared, filename, DEFAULT_CONTENT_TYPES)


def test_an_allow_list_without_pdf_cannot_sniff() -> None:
    with pytest.raises(UnsupportedType):
        resolve_content_type(None, "noext", ("text/plain",))


def _check(content_type: str, *chunks: bytes) -> str:
    check = ContentCheck(content_type)
    for chunk in chunks:
        check.feed(chunk)
    return check.finish()


def test_text_is_checked_as_utf8_across_chunk_boundaries() -> None:
    snowman = "☃".encode()
    assert _check("text/plain", b"a" + snowman[:1], snowman[1:], b"b") == "text/plain"
    with pytest.raises(UnsupportedType):
        _check("text/plain", b"ok", b"\xff")
    with pytest.raises(UnsupportedType):
        _check("text/csv", b"cut" + snowman[:2])  # ends inside a character
    with pytest.raises(UnsupportedType):
        _check("application/json", b"{}", b"\x00")


def test_pdf_needs_its_magic_even_split_over_chunks() -> None:
    assert _check("application/pdf", b"%P", b"DF-1.7 ...") == "application/pdf"
    assert _check(SNIFF, b"%PDF-", b"\x00\xff binary is fine") == "application/pdf"
    for chunks in ([b"%PD"], [b"<html>"], [b"%P", b"DX"]):
        with pytest.raises(UnsupportedType):
            _check("application/pdf", *chunks)
    with pytest.raises(UnsupportedType):
        _check(SNIFF, b"MZ")
