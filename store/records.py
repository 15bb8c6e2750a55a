"""The store's records: what goes in (``NewJob``, ``NewResult``) and what comes out.

Inputs validate themselves on construction (``ValueError``), so nothing unbounded or
ill-formed reaches the database.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, TypeAlias

from schemas.limits import MAX_METADATA_KEYS, MAX_METADATA_VALUE_CHARS
from schemas.parsing import Chunk as ResultChunk  # a stored chunk is the parser's chunk
from schemas.parsing import MetadataValue
from store.digests import check_sha256

__all__ = [
    "JOB_STATES",
    "Job",
    "JobEvent",
    "JobResult",
    "JobState",
    "MetadataValue",
    "NewJob",
    "NewResult",
    "ResultChunk",
    "SearchHit",
    "StuckJob",
]

JobState: TypeAlias = Literal["queued", "processing", "done", "failed"]
JOB_STATES: tuple[JobState, ...] = ("queued", "processing", "done", "failed")

MAX_ID_CHARS = 128
MAX_OWNER_CHARS = 256
MAX_FILENAME_CHARS = 1024
MAX_CONTENT_TYPE_CHARS = 255
MAX_PARSER_CHARS = 64
MAX_METADATA_KEY_CHARS = 256


def _check_text(name: str, value: str, max_chars: int, *, allow_empty: bool = False) -> None:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string")
    if not allow_empty and not value:
        raise ValueError(f"{name} must not be empty")
    if len(value) > max_chars:
        raise ValueError(f"{name} is longer than {max_chars} characters")
    if "\x00" in value:
        raise ValueError(f"{name} must not contain NUL")
    _check_unicode(name, value)


def _check_unicode(name: str, value: str) -> None:
    """SQLite stores UTF-8, so lone surrogates (from ``surrogateescape`` decoding) are refused."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{name} is not valid Unicode text") from exc


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job as the gateway records it on upload; it starts ``queued``."""

    job_id: str
    owner: str
    filename: str
    content_type: str
    size: int
    blob_sha256: str
    trace: str | None = None

    def __post_init__(self) -> None:
        _check_text("job_id", self.job_id, MAX_ID_CHARS)
        _check_text("owner", self.owner, MAX_OWNER_CHARS)
        _check_text("filename", self.filename, MAX_FILENAME_CHARS)
        _check_text("content_type", self.content_type, MAX_CONTENT_TYPE_CHARS)
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0:
            raise ValueError("size must be a non-negative integer")
        check_sha256(self.blob_sha256)
        if self.trace is not None:
            _check_text("trace", self.trace, MAX_ID_CHARS)


@dataclass(frozen=True, slots=True)
class Job:
    """A job as stored. ``finished_at`` is set on reaching ``done`` or ``failed``."""

    job_id: str
    owner: str
    filename: str
    content_type: str
    size: int
    blob_sha256: str
    state: JobState
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    error_reason: str | None
    error_detail: str | None
    trace: str | None


@dataclass(frozen=True, slots=True)
class StuckJob:
    """A ``processing`` job whose last parse request is older than the sweeper's threshold.

    ``rerequests`` counts the parse requests sent after the first; ``requested_at`` is when the
    last one (or the first, at the move to ``processing``) was claimed.
    """

    job: Job
    rerequests: int
    requested_at: datetime


@dataclass(frozen=True, slots=True)
class JobEvent:
    """One entry of a job's state history (the first is ``queued``, at creation)."""

    job_id: str
    state: JobState
    at: datetime
    detail: str | None


def _check_metadata(metadata: Mapping[str, MetadataValue]) -> None:
    if not isinstance(metadata, Mapping):
        raise ValueError("metadata must be a mapping")
    if len(metadata) > MAX_METADATA_KEYS:
        raise ValueError(f"metadata has more than {MAX_METADATA_KEYS} keys")
    for key, value in metadata.items():
        _check_text("metadata key", key, MAX_METADATA_KEY_CHARS)
        if value is None or isinstance(value, bool | int):
            continue
        if isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError(f"metadata {key!r} must be a finite number")
        elif isinstance(value, str):
            if len(value) > MAX_METADATA_VALUE_CHARS:
                raise ValueError(f"metadata {key!r} is longer than {MAX_METADATA_VALUE_CHARS}")
            _check_unicode(f"metadata {key!r}", value)
        else:
            raise ValueError(f"metadata {key!r} must be str, int, float, bool or None")


@dataclass(frozen=True, slots=True)
class NewResult:
    """A parse result to store: the text, flat metadata, and the chunks to index for search.

    Only the chunks are indexed; every chunk must lie inside ``text`` and have a unique index.
    """

    text: str
    metadata: Mapping[str, MetadataValue]
    chunks: tuple[ResultChunk, ...]
    pages: int | None
    parser: str

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise ValueError("text must be a string")
        _check_unicode("text", self.text)
        _check_metadata(self.metadata)
        _check_text("parser", self.parser, MAX_PARSER_CHARS)
        if self.pages is not None and (
            isinstance(self.pages, bool) or not isinstance(self.pages, int) or self.pages < 0
        ):
            raise ValueError("pages must be a non-negative integer or None")
        seen: set[int] = set()
        for chunk in self.chunks:
            if not isinstance(chunk, ResultChunk):
                raise ValueError("chunks must be ResultChunk instances")
            if chunk.index in seen:
                raise ValueError(f"chunk index {chunk.index} appears twice")
            seen.add(chunk.index)
            if chunk.end > len(self.text):
                raise ValueError(f"chunk {chunk.index} ends past the end of the text")


@dataclass(frozen=True, slots=True)
class JobResult:
    """A stored parse result; ``chunks`` are ordered by index."""

    job_id: str
    text: str
    metadata: dict[str, MetadataValue]
    chunks: tuple[ResultChunk, ...]
    pages: int | None
    parser: str
    stored_at: datetime


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One matching chunk. ``score`` is the negated bm25 rank: higher is more relevant.

    ``snippet`` is plain text with each matched term wrapped in ``[`` and ``]`` and ``…``
    where text was cut. It is NOT escaped, and the document itself may contain brackets:
    escape it before putting it in HTML.
    """

    job_id: str
    filename: str
    chunk_index: int
    snippet: str
    score: float
