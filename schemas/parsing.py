"""Parse messages: the worker's request to the parser and the parser's two possible answers."""

from __future__ import annotations

from typing import Annotated, ClassVar, Final, Literal, Self

from pydantic import AwareDatetime, Field, StringConstraints, model_validator

from schemas.base import WireMessage, WireModel
from schemas.identifiers import ContentType, JobId, ParserName, SafeFilename, Sha256Hex
from schemas.limits import (
    MAX_CHUNKS,
    MAX_DURATION_MS,
    MAX_METADATA_KEYS,
    MAX_METADATA_VALUE_CHARS,
    MAX_PAGES,
    MAX_TEXT_CHARS,
    BlobSize,
    PageCount,
)
from schemas.text import Detail

__all__ = [
    "Chunk",
    "Metadata",
    "MetadataValue",
    "ParseCompleted",
    "ParseFailed",
    "ParseFailureReason",
    "ParseRequested",
]

_Offset = Annotated[int, Field(ge=0, le=MAX_TEXT_CHARS)]

# Numbers stay within the signed 64-bit range. The float branch carries (exclusive) bounds
# too because strict mode still lets a float field take a JSON integer: without them an
# integer too large for the int branch would silently become an inexact float.
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1

MetadataValue = (
    Annotated[str, StringConstraints(max_length=MAX_METADATA_VALUE_CHARS)]
    | Annotated[int, Field(ge=_INT64_MIN, le=_INT64_MAX)]
    | Annotated[float, Field(gt=-(2.0**63), lt=2.0**63)]
    | bool
    | None
)
"""A metadata value: a string of ≤ 1024 characters, a number within the signed 64-bit range
(integers stay integers, floats are finite), a bool, or null."""

Metadata = Annotated[
    dict[
        Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\p{C}]+$")],
        MetadataValue,
    ],
    Field(max_length=MAX_METADATA_KEYS),
]
"""Document metadata (title, author, …): at most 64 keys of 1..64 printable characters."""

ParseFailureReason = Literal[
    "unsupported_type",
    "too_large",
    "malformed",
    "encrypted",
    "timeout",
    "digest_mismatch",
    "blob_missing",
    "output_too_large",
    "internal",
]
"""Why a parse failed."""


class Chunk(WireModel):
    """A slice ``text[start:end]`` of the extracted text (character offsets, end exclusive)."""

    index: Annotated[int, Field(ge=0, lt=MAX_CHUNKS)]
    """Position of the chunk: chunks are numbered 0, 1, 2, … in order."""
    start: _Offset
    end: _Offset
    page: Annotated[int, Field(ge=1, le=MAX_PAGES)] | None = None
    """1-based page the chunk starts on, where the format has pages."""

    @model_validator(mode="after")
    def _end_not_before_start(self) -> Self:
        if self.end < self.start:
            raise ValueError(f"chunk {self.index}: end {self.end} is before start {self.start}")
        return self


class ParseRequested(WireMessage):
    """The worker asks the parser to parse a stored blob."""

    MESSAGE_TYPE: ClassVar[str] = "parse.requested"

    job_id: JobId
    blob_sha256: Sha256Hex
    """Content address of the blob; the parser re-checks it after reading."""
    filename: SafeFilename
    content_type: ContentType
    size: BlobSize
    requested_at: AwareDatetime


class ParseCompleted(WireMessage):
    """The parser's result: the text, its metadata and its chunks."""

    MESSAGE_TYPE: ClassVar[str] = "parse.completed"

    job_id: JobId
    blob_sha256: Sha256Hex
    text: Annotated[str, StringConstraints(max_length=MAX_TEXT_CHARS)]
    metadata: Metadata
    chunks: Annotated[list[Chunk], Field(max_length=MAX_CHUNKS)]
    """Chunks numbered from 0, each within ``text``; with ``pages`` set, on a page ≤ ``pages``."""
    pages: PageCount | None = None
    parser: ParserName
    duration_ms: Annotated[int, Field(ge=0, le=MAX_DURATION_MS)]
    """How long the parse took, in milliseconds."""

    @model_validator(mode="after")
    def _chunks_fit_text(self) -> Self:
        length = len(self.text)
        pages = self.pages
        for position, chunk in enumerate(self.chunks):
            if chunk.index != position:
                raise ValueError(f"chunk at position {position} has index {chunk.index}")
            if chunk.end > length:
                raise ValueError(f"chunk {position} ends at {chunk.end}, past the text ({length})")
            if pages is not None and chunk.page is not None and chunk.page > pages:
                raise ValueError(f"chunk {position} is on page {chunk.page} of {pages}")
        return self


class ParseFailed(WireMessage):
    """The parser could not parse the blob; ``permanent`` says whether a retry could help."""

    MESSAGE_TYPE: ClassVar[str] = "parse.failed"

    job_id: JobId
    blob_sha256: Sha256Hex
    reason: ParseFailureReason
    detail: Detail
    permanent: bool
