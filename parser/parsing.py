"""``parse_bytes``: detect, extract, bound and chunk one document, in this process."""

from __future__ import annotations

from parser.chunking import Region, chunk_regions
from parser.detection import detect_input
from parser.document import ParsedDocument
from parser.errors import ParseError
from parser.extraction import Extraction, OutputBudget
from parser.formats.csv_rows import extract_csv
from parser.formats.html import extract_html
from parser.formats.json_lines import extract_json
from parser.formats.markdown import extract_markdown
from parser.formats.pdf import PAGE_SEPARATOR, extract_pdf
from parser.formats.plaintext import extract_plain_text
from parser.limits import ParseLimits
from schemas.formats import max_input_bytes, too_large_detail
from schemas.parsing import MetadataValue

__all__ = ["parse_bytes"]

_DEFAULT_LIMITS = ParseLimits()


def parse_bytes(
    data: bytes, content_type: str, filename: str, limits: ParseLimits = _DEFAULT_LIMITS
) -> ParsedDocument:
    """Parse ``data`` synchronously and deterministically, within ``limits`` except time.

    Size is checked before anything else; wall time and memory are bounded only when this
    runs inside ``DocumentParser``'s sandbox process. Raises ``ParseError``.
    """
    if len(data) > limits.max_input_bytes:
        raise ParseError(
            "too_large", f"document is {len(data)} bytes, more than {limits.max_input_bytes}"
        )
    detected = detect_input(data, content_type, filename)
    limit = max_input_bytes(
        detected.content_type,
        max_document_bytes=limits.max_input_bytes,
        max_text_chars=limits.max_output_chars,
    )
    if len(data) > limit:
        detail = too_large_detail(detected.content_type, limit)
        raise ParseError("too_large", f"document is {len(data)} bytes: {detail}")
    extraction = _extract(detected.content_type, data, detected.text, limits)
    separator = PAGE_SEPARATOR if extraction.paged else ""
    text = separator.join(extraction.parts)
    if len(text) > limits.max_output_chars:
        raise ParseError(
            "output_too_large",
            f"extracted text is {len(text)} characters, more than {limits.max_output_chars}",
        )
    chunks = chunk_regions(
        text,
        _regions(extraction, len(separator)),
        chunk_chars=limits.chunk_chars,
        max_chunks=limits.max_chunks,
    )
    metadata: dict[str, MetadataValue] = {
        "content_type": detected.content_type,
        "bytes": len(data),
    }
    metadata.update(extraction.metadata)
    return ParsedDocument(
        text=text,
        metadata=metadata,
        chunks=chunks,
        pages=len(extraction.parts) if extraction.paged else None,
        parser=extraction.parser,
    )


def _extract(content_type: str, data: bytes, text: str | None, limits: ParseLimits) -> Extraction:
    budget = OutputBudget(limits.max_output_chars)
    if content_type == "application/pdf":
        return extract_pdf(data, limits, budget)
    assert text is not None, "detect_input decodes every text format"
    match content_type:
        case "text/markdown":
            return extract_markdown(text)
        case "text/html":
            return extract_html(text)
        case "application/json":
            return extract_json(text, budget)
        case "text/csv":
            return extract_csv(text, budget)
        case _:
            return extract_plain_text(text)


def _regions(extraction: Extraction, separator: int) -> list[Region]:
    if not extraction.paged:
        return [Region(0, len(extraction.parts[0]))]
    regions: list[Region] = []
    offset = 0
    for number, part in enumerate(extraction.parts, start=1):
        regions.append(Region(offset, offset + len(part), number))
        offset += len(part) + separator
    return regions
