"""The files of a log directory: segment names and order, and bounded line-by-line reading."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = [
    "CHECKPOINTS_FILE",
    "Line",
    "complete_end",
    "list_segments",
    "read_lines",
    "segment_name",
    "segment_path",
]

CHECKPOINTS_FILE: Final = "checkpoints.jsonl"
LOCK_FILE: Final = ".lock"
_SEGMENT_NAME: Final = re.compile(r"segment-(\d{6,9})\.jsonl")
_TAIL_CHUNK: Final = 64 * 1024


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a file: where it starts, its bytes without the newline, and its state.

    ``complete`` is false for a final line with no newline (a write in progress or torn by a
    crash); ``too_long`` marks a line cut at the reader's limit.
    """

    number: int
    offset: int
    data: bytes
    complete: bool
    too_long: bool = False

    @property
    def end(self) -> int:
        """Offset just past this line (and its newline)."""
        return self.offset + len(self.data) + (1 if self.complete else 0)


def segment_name(number: int) -> str:
    """``segment-000001.jsonl`` for segment 1."""
    return f"segment-{number:06d}.jsonl"


def segment_path(directory: Path, number: int) -> Path:
    """The path of segment ``number`` in ``directory``."""
    return directory / segment_name(number)


def list_segments(directory: Path) -> list[tuple[int, Path]]:
    """The segments present in ``directory`` as ``(number, path)``, in order; other files are
    ignored. A missing directory has none."""
    if not directory.is_dir():
        return []
    found: list[tuple[int, Path]] = []
    for path in directory.iterdir():
        match = _SEGMENT_NAME.fullmatch(path.name)
        if match is not None and path.is_file():
            found.append((int(match.group(1)), path))
    found.sort()
    return found


def read_lines(
    path: Path, *, limit: int, start_offset: int = 0, start_line: int = 1
) -> Iterator[Line]:
    """Yield the lines of ``path`` from ``start_offset``, never holding more than ``limit``
    bytes of one line; a longer line is yielded once, cut, with ``too_long`` set, and ends
    the iteration."""
    with path.open("rb") as file:
        file.seek(start_offset)
        offset, number = start_offset, start_line
        while True:
            data = file.readline(limit + 1)
            if not data:
                return
            if data.endswith(b"\n"):
                yield Line(number=number, offset=offset, data=data[:-1], complete=True)
            elif len(data) > limit:
                yield Line(number=number, offset=offset, data=data, complete=False, too_long=True)
                return
            else:
                yield Line(number=number, offset=offset, data=data, complete=False)
                return
            offset += len(data)
            number += 1


def complete_end(path: Path) -> tuple[int, int]:
    """``(offset, lines)``: where the complete lines of ``path`` end (a partial final line is
    excluded) and how many there are."""
    lines = 0
    last_newline = -1
    position = 0
    with path.open("rb") as file:
        while chunk := file.read(_TAIL_CHUNK):
            lines += chunk.count(b"\n")
            index = chunk.rfind(b"\n")
            if index >= 0:
                last_newline = position + index
            position += len(chunk)
    return last_newline + 1, lines
