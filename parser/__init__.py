"""The document parser library: untrusted blobs in, bounded text, metadata and chunks out.

``parse_bytes`` parses in the calling process; ``DocumentParser`` runs it in confined sandbox
processes (``parser.confinement``) with time and memory limits. ``parser.daemon`` wires it to
the broker, sharing the parse slots among owners in turn (``parser.fairness``).
"""

from __future__ import annotations

from parser.detection import SUPPORTED_TYPES, detect_format
from parser.document import ParsedDocument
from parser.document_parser import DocumentParser
from parser.errors import ParseError, ParseErrorReason
from parser.limits import ParseLimits
from parser.parsing import parse_bytes

__all__ = [
    "SUPPORTED_TYPES",
    "DocumentParser",
    "ParseError",
    "ParseErrorReason",
    "ParseLimits",
    "ParsedDocument",
    "detect_format",
    "parse_bytes",
]
