"""A journal of spent envelope ids, so a restarted consumer still refuses replays.

One line per state of a spent ``jti``: ``<jti> <expires_at> p`` when it is first seen (pending),
``<jti> <expires_at>`` once its delivery is settled; the last line of a ``jti`` wins. Lines are
flushed and fsynced at most every ``flush_interval`` by the runtime and on shutdown. A crash
(SIGKILL) loses at most that interval's entries. Expired lines are dropped when the journal
is loaded and whenever it is compacted, so its size follows the spent-id cache's, not uptime.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import IO

import structlog

from keys.filemodes import open_private, private_dir

__all__ = ["SpentIdsJournal"]

_LINE = re.compile(r"([A-Za-z0-9_-]{1,128}) ([0-9]{1,12}(?:\.[0-9]{1,6})?)( p)?")
_log = structlog.get_logger("sealflow.spent_ids")


class SpentIdsJournal:
    """Append-only file of ``(jti, expires_at, pending)`` with atomic compaction."""

    def __init__(self, path: Path, *, compact_after: int = 100_000) -> None:
        self.path = path
        self.compact_after = compact_after
        self._file: IO[str] | None = None
        self._appended = 0
        self._dirty = False

    def load(self, now: float) -> list[tuple[str, float, bool]]:
        """The unexpired entries; rewrites the file with just those (dropping damage too)."""
        entries: dict[str, tuple[float, bool]] = {}
        skipped = 0
        if self.path.exists():
            with self.path.open("r", encoding="ascii", errors="replace") as handle:
                for line in handle:
                    match = _LINE.fullmatch(line.rstrip("\n"))
                    if match is None:
                        skipped += 1
                        continue
                    expires_at = float(match.group(2))
                    if expires_at >= now:
                        entries[match.group(1)] = (expires_at, match.group(3) is not None)
        if skipped:
            _log.warning("spent_ids_journal.skipped_lines", count=skipped, path=str(self.path))
        live = [(jti, expires_at, pending) for jti, (expires_at, pending) in entries.items()]
        self.compact(live)
        return live

    def append(self, jti: str, expires_at: float, *, pending: bool = False) -> None:
        """Record a spent ``jti`` (buffered; durable after the next :meth:`flush`)."""
        if self._file is None:
            self._open()
        assert self._file is not None
        self._file.write(_line(jti, expires_at, pending))
        self._appended += 1
        self._dirty = True

    @property
    def needs_compaction(self) -> bool:
        """True once enough lines were appended that rewriting the live ones is worth it."""
        return self._appended >= self.compact_after

    def flush(self) -> None:
        """Write buffered lines through to disk."""
        if self._file is not None and self._dirty:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._dirty = False

    def compact(self, live: Iterable[tuple[str, float, bool]]) -> None:
        """Atomically replace the journal with ``live`` entries only."""
        self.close()
        private_dir(self.path.parent)
        temporary = self.path.with_name(self.path.name + ".tmp")
        fd = open_private(temporary, os.O_WRONLY | os.O_TRUNC)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.writelines(_line(*entry) for entry in live)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)
        self._appended = 0
        self._open()

    def close(self) -> None:
        """Flush and close the file (reopened by the next append)."""
        if self._file is not None:
            self.flush()
            self._file.close()
            self._file = None

    def _open(self) -> None:
        private_dir(self.path.parent)
        self._file = os.fdopen(
            open_private(self.path, os.O_WRONLY | os.O_APPEND), "a", encoding="ascii"
        )


def _line(jti: str, expires_at: float, pending: bool) -> str:
    return f"{jti} {expires_at:.3f}{' p' if pending else ''}\n"
