"""The anchor: the newest checkpoint kept outside the log directory, where cutting the log back
to an earlier checkpoint cannot reach it.

The writer stores each checkpoint in the anchor right after it is on disk, refuses to reopen a
log that lacks the anchored checkpoint, and ``verify_log`` fails on such a log. Anything that
can keep one checkpoint line and hand it back can be an anchor (:class:`CheckpointAnchor`):
a file at a separately configured path (:class:`FileAnchor`), or a row of a database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import structlog

from audit.checkpoint import MAX_CHECKPOINT_BYTES, Checkpoint, DecodedCheckpoint, decode_checkpoint
from audit.errors import AuditLogError
from keys import KeyFileError
from keys.filemodes import PRIVATE_FILE_MODE, private_dir
from keys.files import atomic_write

__all__ = ["CheckpointAnchor", "FileAnchor", "anchor_inside"]

_log = structlog.get_logger(__name__)


class CheckpointAnchor(Protocol):
    """Keeps the newest checkpoint of one log, out of reach of whoever can edit the log."""

    @property
    def where(self) -> str:
        """Where the anchor is, for messages."""
        ...

    def load(self) -> DecodedCheckpoint | None:
        """The anchored checkpoint, None when nothing was anchored yet; raises
        :class:`AuditLogError` (``anchor_unreadable``) when it cannot be read or decoded."""
        ...

    def store(self, checkpoint: Checkpoint) -> None:
        """Make ``checkpoint`` the anchored one (durably); never move the anchor back."""
        ...


def anchor_inside(anchor: Path, directory: Path) -> bool:
    """Whether the anchor file ``anchor`` lies in the log ``directory`` (which defeats it)."""
    return anchor.resolve().is_relative_to(directory.resolve())


class FileAnchor:
    """An anchor file holding one checkpoint line, replaced atomically at each checkpoint.

    Keep it where the log's editors cannot write: another filesystem, another host's mount,
    another owner. On the same disk and owner as the log it still catches a careless cut, but
    not someone who also rewinds the anchor file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stored_seq = 0

    @property
    def where(self) -> str:
        """The anchor file's path."""
        return str(self.path)

    def load(self) -> DecodedCheckpoint | None:
        """The checkpoint in the anchor file, None when the file does not exist."""
        try:
            with self.path.open("rb") as file:
                data = file.read(MAX_CHECKPOINT_BYTES + 2)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise AuditLogError(
                f"cannot read the audit anchor {self.path}: {exc}", reason="anchor_unreadable"
            ) from exc
        try:
            decoded = decode_checkpoint(data.rstrip(b"\n"))
        except AuditLogError as exc:
            raise AuditLogError(
                f"the audit anchor {self.path} is not a checkpoint: {exc.detail}",
                reason="anchor_unreadable",
            ) from exc
        self._stored_seq = max(self._stored_seq, decoded.checkpoint.seq)
        return decoded

    def store(self, checkpoint: Checkpoint) -> None:
        """Replace the anchor file with ``checkpoint`` (temp file, fsync, rename)."""
        if checkpoint.seq < self._stored_seq:
            raise AuditLogError(
                f"refusing to move the anchor back from seq {self._stored_seq} to {checkpoint.seq}",
                reason="anchor_regression",
            )
        try:
            private_dir(self.path.parent)
            atomic_write(self.path, checkpoint.to_line(), mode=PRIVATE_FILE_MODE)
        except (OSError, KeyFileError) as exc:
            raise AuditLogError(
                f"cannot write the audit anchor {self.path}: {exc}", reason="anchor_write_failed"
            ) from exc
        self._stored_seq = checkpoint.seq
        _log.debug("audit_anchor_stored", seq=checkpoint.seq, path=str(self.path))
