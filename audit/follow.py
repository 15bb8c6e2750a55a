"""``follow_records``: ``tail -f`` for the audit log, across segment roll-overs.

The follower remembers a position (segment, byte offset of the next unread line) and polls:
it reads only complete lines, so a record being written is picked up once its newline is
there, and it moves to the next segment once that exists (the writer finishes a segment
before creating the next, so nothing is left behind). Between polls it sleeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

from audit.errors import AuditLogError
from audit.query import AuditFilter, Position, last_matching, read_segment
from audit.record import AuditRecord
from audit.segments import complete_end, list_segments, segment_path

__all__ = ["follow_records"]

_MAX_BATCH: Final = 10_000


class _Follower:
    """Reads what was appended since the last call; blocking file I/O, run in a thread."""

    def __init__(self, directory: Path, flt: AuditFilter | None) -> None:
        self._directory = directory
        self._flt = flt
        self.position: Position | None = None

    def seek_end(self) -> None:
        """Start after the last complete record (or at the start of a log yet to be created)."""
        segments = list_segments(self._directory)
        if not segments:
            self.position = None
            return
        number, path = segments[-1]
        offset, lines = complete_end(path)
        self.position = Position(segment=number, offset=offset, line=lines + 1)

    def poll(self) -> tuple[list[AuditRecord], bool]:
        """New matching records (at most a batch) and whether more may be waiting."""
        if self.position is None:
            segments = list_segments(self._directory)
            if not segments:
                return [], False
            self.position = Position(segment=segments[0][0], offset=0, line=1)
        found: list[AuditRecord] = []
        scanned = 0
        while True:
            position = self.position
            path = segment_path(self._directory, position.segment)
            next_exists = segment_path(self._directory, position.segment + 1).exists()
            size = path.stat().st_size if path.exists() else 0
            if size < position.offset:
                raise AuditLogError(
                    f"{path.name} shrank below what was already read: the log was truncated",
                    reason="log_truncated",
                )
            offset, line_number = position.offset, position.line
            if size > offset:
                for record, line in read_segment(path, start=offset, start_line=line_number):
                    offset, line_number = line.end, line.number + 1
                    scanned += 1
                    if self._flt is None or self._flt.matches(record):
                        found.append(record)
                    if scanned >= _MAX_BATCH:
                        break
            self.position = Position(position.segment, offset, line_number)
            if scanned >= _MAX_BATCH:
                return found, True
            if not next_exists:
                return found, False
            self.position = Position(position.segment + 1, 0, 1)


async def follow_records(
    directory: Path,
    flt: AuditFilter | None = None,
    *,
    last: int = 0,
    poll_interval: float = 0.25,
    stop: asyncio.Event | None = None,
) -> AsyncIterator[AuditRecord]:
    """Yield the last ``last`` matching records, then every matching record appended after,
    until ``stop`` is set (or forever). Polls every ``poll_interval`` seconds when idle."""
    if poll_interval <= 0:
        raise ValueError("poll_interval must be positive")
    follower = _Follower(directory, flt)
    await asyncio.to_thread(follower.seek_end)
    if last > 0:
        end = follower.position
        if end is not None:
            backlog = await asyncio.to_thread(last_matching, directory, flt, last, end=end)
            for record in backlog:
                yield record
    while stop is None or not stop.is_set():
        records, more = await asyncio.to_thread(follower.poll)
        for record in records:
            yield record
        if more:
            continue
        if stop is None:
            await asyncio.sleep(poll_interval)
        else:
            try:
                await asyncio.wait_for(stop.wait(), timeout=poll_interval)
            except TimeoutError:
                continue
