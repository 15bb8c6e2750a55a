"""What a format extractor hands back, and the output budget it fills while extracting."""

from __future__ import annotations

from dataclasses import dataclass

from parser.errors import ParseError
from schemas.parsing import MetadataValue

__all__ = ["Extraction", "OutputBudget"]


@dataclass(frozen=True, slots=True)
class Extraction:
    """Cleaned text of a document (one part per page when ``paged``) plus its metadata."""

    parts: tuple[str, ...]
    metadata: dict[str, MetadataValue]
    parser: str
    paged: bool = False


class OutputBudget:
    """Counts extracted characters and stops the parse as soon as they exceed the cap.

    Extractors whose output can outgrow their input (JSON paths, CSV separators, compressed
    PDF streams) charge every piece here, so a hostile document fails early and cheaply.
    """

    __slots__ = ("_left", "_limit")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._left = limit

    def charge(self, chars: int) -> None:
        """Spend ``chars`` characters; raise ``output_too_large`` once the cap is passed."""
        self._left -= chars
        if self._left < 0:
            raise ParseError("output_too_large", f"extracted text exceeds {self._limit} characters")
