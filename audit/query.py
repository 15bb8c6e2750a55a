"""Reading the log: filters and streaming iteration over records, oldest first.

Readers do not check hashes (that is ``verify_log``'s job) but decode every line strictly, so
a damaged line raises rather than printing garbage. A final line still being written is
skipped, not an error.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from audit.errors import AuditLogError
from audit.record import MAX_RECORD_BYTES, AuditRecord, decode_record
from audit.segments import Line, list_segments, read_lines

__all__ = ["AuditFilter", "iter_records"]


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which records to show; every criterion that is not None must hold.

    ``types`` matches the event type exactly; ``since`` compares with the record's ``ts``
    (when the audit service wrote it, on its own clock); ``after`` keeps records whose seq is
    greater (a live tail's position).
    """

    types: frozenset[str] | None = None
    actor: str | None = None
    job: str | None = None
    since: datetime | None = None
    after: int | None = None

    def __post_init__(self) -> None:
        if self.since is not None and self.since.tzinfo is None:
            raise ValueError("AuditFilter.since must be timezone-aware")

    def matches(self, record: AuditRecord) -> bool:
        """Whether ``record`` passes the filter."""
        event = record.event
        return (
            (self.types is None or event.type in self.types)
            and (self.actor is None or event.actor == self.actor)
            and (self.job is None or event.job == self.job)
            and (self.since is None or record.ts >= self.since)
            and (self.after is None or record.seq > self.after)
        )


@dataclass(frozen=True, slots=True)
class Position:
    """A place in the log: a segment, the byte offset of its next line and that line's number."""

    segment: int
    offset: int
    line: int


def decode_line(line: Line, location: str) -> AuditRecord | None:
    """The record on ``line``; None for a final line still being written."""
    if not line.complete and not line.too_long:
        return None
    if line.too_long:
        raise AuditLogError(
            f"record line is longer than {MAX_RECORD_BYTES} bytes",
            reason="malformed_record",
            location=location,
        )
    try:
        return decode_record(line.data).record
    except AuditLogError as exc:
        exc.location = location
        raise


def read_segment(
    path: Path, *, start: int = 0, start_line: int = 1, end: int | None = None
) -> Iterator[tuple[AuditRecord, Line]]:
    """The records of one segment from byte ``start`` up to (not past) byte ``end``."""
    for line in read_lines(path, limit=MAX_RECORD_BYTES, start_offset=start, start_line=start_line):
        if end is not None and line.offset >= end:
            return
        record = decode_line(line, f"{path.name}:{line.number}")
        if record is None:
            return
        yield record, line


def _check_deadline(deadline: float | None) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise AuditLogError("reading the audit log took too long", reason="read_timeout")


def last_matching(
    directory: Path,
    flt: AuditFilter | None,
    count: int,
    *,
    end: Position | None = None,
    deadline: float | None = None,
) -> list[AuditRecord]:
    """The last ``count`` records that match, oldest first, reading segments newest first and
    stopping once enough are found, or once a segment reaches back to the filter's ``after``
    (at most ``count`` records are held). Past the ``deadline`` (``time.monotonic``) it
    raises ``read_timeout``."""
    if count <= 0:
        return []
    segments = list_segments(directory)
    if end is not None:
        segments = [(number, path) for number, path in segments if number <= end.segment]
    found: deque[AuditRecord] = deque()
    for number, path in reversed(segments):
        segment_end = end.offset if end is not None and number == end.segment else None
        window: deque[AuditRecord] = deque(maxlen=count - len(found))
        reached_after = False
        for index, (record, _line) in enumerate(read_segment(path, end=segment_end)):
            if index % 1024 == 0:
                _check_deadline(deadline)
            if flt is not None and flt.after is not None and record.seq <= flt.after:
                reached_after = True
                continue
            if flt is None or flt.matches(record):
                window.append(record)
        found.extendleft(reversed(window))
        if len(found) >= count or reached_after:
            break
    return list(found)


def iter_records(
    directory: Path,
    flt: AuditFilter | None = None,
    *,
    last: int | None = None,
    deadline: float | None = None,
) -> Iterator[AuditRecord]:
    """Stream the records that match ``flt``, oldest first; with ``last``, only the last
    ``last`` of them (given up with ``read_timeout`` past ``deadline``). Memory is bounded by
    one line (plus ``last`` records)."""
    if last is not None:
        yield from last_matching(directory, flt, last, deadline=deadline)
        return
    for _number, path in list_segments(directory):
        for record, _line in read_segment(path):
            if flt is None or flt.matches(record):
                yield record
