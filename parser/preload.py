"""Everything a parse may import, imported before the sandbox loses the filesystem.

Once confined, the sandbox can open no file, so a module first imported mid-parse would fail.
It imports every submodule of the packages that import lazily (pypdf, the codecs) and runs one
tiny document of each format through ``parse_bytes``.
"""

from __future__ import annotations

import encodings
import importlib
import pkgutil
from typing import Final

import pypdf

from parser.parsing import parse_bytes

__all__ = ["preload"]

_PDF_OBJECTS: Final = (
    b"<</Type/Catalog/Pages 2 0 R>>",
    b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
    b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 99 99]/Resources<</Font<</F1 4 0 R>>>>"
    b"/Contents 5 0 R>>",
    b"<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>",
    b"<</Length 21>>stream\nBT /F1 9 Tf (a) Tj ET\nendstream",
)


def _sample_pdf() -> bytes:
    """A one-page PDF with a correct cross-reference table, so pypdf reads it without repair."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(_PDF_OBJECTS, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(_PDF_OBJECTS) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer<</Size %d/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % (len(offsets) + 1, xref)
    return bytes(out)


_SAMPLES: Final = (
    (b"a\r\nb", "text/plain", "a.txt"),
    (b"# a\n\n[b](c) ![d](e)\n\n> f\n\n- g\n", "text/markdown", "a.md"),
    (b"<html lang=en><title>a</title><p>b<table><tr><td>c</table><pre>d</pre>", "text/html", ""),
    (b'{"a": [1, 2.5, "b", null, true, {}], "c d": []}', "application/json", "a.json"),
    (b"a,b\n1,2\n", "text/csv", "a.csv"),
    (_sample_pdf(), "application/pdf", "a.pdf"),
)


def preload() -> tuple[str, ...]:
    """Import what parses need and parse one sample per format; names the modules skipped."""
    skipped: list[str] = []
    for package in (encodings, pypdf):
        for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            try:
                importlib.import_module(module.name)
            except ImportError:
                # An optional extra (Pillow, cryptography) or another platform's codec: a parse
                # that needs it fails as `internal`, and the sandbox reports it as skipped.
                skipped.append(module.name)
    for data, content_type, filename in _SAMPLES:
        parse_bytes(data, content_type, filename)
    return tuple(skipped)
