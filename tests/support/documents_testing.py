"""Documents for pipeline tests: PDFs written by pypdf's writer, and one document per format.

(``tests/parser/conftest.py`` builds PDFs byte by byte instead, to control every object.)
"""

from __future__ import annotations

import io
from collections.abc import Mapping

__all__ = ["DOCUMENTS", "text_pdf"]


def text_pdf(
    *pages: str, compress: bool = False, metadata: Mapping[str, str] | None = None
) -> bytes:
    """A PDF with one Helvetica text page per string, as pypdf's writer writes it."""
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    writer = PdfWriter()
    for text in pages:
        page = writer.add_blank_page(width=300, height=200)
        font = DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Font"),
                NameObject("/Subtype"): NameObject("/Type1"),
                NameObject("/BaseFont"): NameObject("/Helvetica"),
            }
        )
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): writer._add_object(font)})}
        )
        stream = DecodedStreamObject()
        stream.set_data(f"BT /F1 12 Tf 20 100 Td ({text}) Tj ET".encode())
        page[NameObject("/Contents")] = writer._add_object(stream)
        if compress:
            page.compress_content_streams()
    if metadata:
        writer.add_metadata(dict(metadata))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


DOCUMENTS: dict[str, tuple[str, bytes]] = {
    "notes.txt": ("text/plain", b"plain words about the harbour\n"),
    "readme.md": ("text/markdown", b"# Title\n\nmarkdown words about lighthouses\n"),
    "page.html": (
        "text/html",
        b"<html><head><title>T</title><script>evil()</script></head>"
        b"<body><p>html words about tides</p></body></html>",
    ),
    "data.json": ("application/json", b'{"topic": "json words about anchors", "n": 3}'),
    "table.csv": ("text/csv", b"name,words\nrow,csv words about sails\n"),
    "doc.pdf": ("application/pdf", text_pdf("pdf words about compasses")),
}
"""One document per accepted format, each with "<format> words about <topic>" in its text;
only the Markdown one mentions lighthouses (a search finds exactly it)."""
