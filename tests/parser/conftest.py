"""Fixtures for the parser tests: PDFs written by hand, byte for byte."""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable, Sequence

import pytest
from pypdf import PdfReader, PdfWriter

PdfBuilder = Callable[..., bytes]


def _escape(line: str) -> bytes:
    escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return escaped.encode("latin-1")


def _text_content(text: str) -> bytes:
    operations = [b"BT /F1 12 Tf 72 720 Td 14 TL"]
    operations += [b"(" + _escape(line) + b") Tj T*" for line in text.split("\n")]
    operations.append(b"ET")
    return b"\n".join(operations)


def build_pdf(
    pages: Sequence[str | bytes],
    *,
    info: dict[str, str] | None = None,
    compress: bool = False,
) -> bytes:
    """A minimal valid PDF: one Helvetica text page per string (raw content per bytes)."""
    count = len(pages)
    page_ids = [4 + 2 * number for number in range(count)]
    info_id = 4 + 2 * count
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids ["
        + b" ".join(b"%d 0 R" % page for page in page_ids)
        + b"] /Count %d >>" % count,
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    }
    for page_id, page in zip(page_ids, pages, strict=True):
        content = _text_content(page) if isinstance(page, str) else page
        objects[page_id] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (page_id + 1)
        )
        if compress:
            data = zlib.compress(content, 9)
            objects[page_id + 1] = (
                b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(data)
                + data
                + b"\nendstream"
            )
        else:
            objects[page_id + 1] = (
                b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream"
            )
    if info:
        entries = b" ".join(b"/" + k.encode() + b" (" + _escape(v) + b")" for k, v in info.items())
        objects[info_id] = b"<< " + entries + b" >>"
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n" % number + objects[number] + b"\nendobj\n"
    size = max(objects) + 1
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for number in range(1, size):
        out += b"%010d 00000 n \n" % offsets[number]
    trailer = b"<< /Size %d /Root 1 0 R" % size
    if info:
        trailer += b" /Info %d 0 R" % info_id
    out += b"trailer\n" + trailer + b" >>\nstartxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def encrypt_pdf(pdf: bytes, *, user_password: str, owner_password: str) -> bytes:
    """``pdf`` encrypted by pypdf's writer (AES-128)."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.encrypt(user_password, owner_password, algorithm="AES-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


@pytest.fixture
def make_pdf() -> PdfBuilder:
    """Build a PDF from page texts (see ``build_pdf``)."""
    return build_pdf


@pytest.fixture
def make_encrypted_pdf() -> Callable[..., bytes]:
    """Encrypt a PDF with pypdf (see ``encrypt_pdf``)."""
    return encrypt_pdf


@pytest.fixture
def slow_pdf() -> bytes:
    """A small (compressed) PDF whose one page takes pypdf many seconds to extract."""
    operation = b"BT /F1 12 Tf 1 0 0 1 72 720 Tm (a) Tj ET\n"
    return build_pdf([operation * 300_000], compress=True)
