"""CSV: dialect sniffed from a small sample, rows read with the stdlib, one line per row."""

from __future__ import annotations

import csv
import io
from typing import Final

from parser.errors import ParseError
from parser.extraction import Extraction, OutputBudget
from parser.text_cleaning import clean_text
from schemas.parsing import MetadataValue

__all__ = ["CSV_MAX_FIELD_CHARS", "extract_csv"]

CSV_MAX_FIELD_CHARS: Final = 131_072
"""Longest field accepted (the csv module's default ``field_size_limit``)."""

_SNIFF_CHARS = 4096
"""The sniffer's regexes are super-linear, so it only ever sees this much."""
_DELIMITERS = ",;\t|"
_FIELD_SEPARATOR = " | "


def extract_csv(text: str, budget: OutputBudget) -> Extraction:
    """Rows as lines, fields joined by `` | ``; metadata: ``rows``, ``columns``, ``delimiter``."""
    dialect = _sniff(text)
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    lines: list[str] = []
    rows = columns = 0
    try:
        for row in reader:
            if not row:
                continue
            if any(len(field) > CSV_MAX_FIELD_CHARS for field in row):
                raise ParseError(
                    "malformed",
                    f"CSV row {reader.line_num} has a field over {CSV_MAX_FIELD_CHARS} chars",
                )
            rows += 1
            columns = max(columns, len(row))
            line = _FIELD_SEPARATOR.join(clean_text(field).strip() for field in row)
            budget.charge(len(line) + 1)
            lines.append(line)
    except csv.Error as exc:
        raise ParseError("malformed", f"invalid CSV near line {reader.line_num}: {exc}") from exc
    metadata: dict[str, MetadataValue] = {
        "rows": rows,
        "columns": columns,
        "delimiter": dialect.delimiter,
    }
    return Extraction(parts=("\n".join(lines),), metadata=metadata, parser="csv")


def _sniff(text: str) -> type[csv.Dialect] | csv.Dialect:
    sample = text[:_SNIFF_CHARS]
    if len(text) > _SNIFF_CHARS and "\n" in sample:
        sample = sample[: sample.rindex("\n")]
    try:
        return csv.Sniffer().sniff(sample, delimiters=_DELIMITERS)
    except csv.Error:
        return csv.excel
