"""The anchor: the newest checkpoint kept outside the log directory, where cutting the log back
to an earlier checkpoint cannot reach it.

The writer stores each checkpoint in the anchor right after it is on disk, refuses to reopen a
log that lacks the anchored checkpoint, and ``verify_log`` fails on such a log. Anything that
can keep one checkpoint line and hand it back can be an anchor (:class:`CheckpointAnchor`):
a file at a separately configured path (:class:`FileAnchor`, the embedded default), or a row
of the shared PostgreSQL database that only ever moves forward (:class:`PgAnchor`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final, Protocol
from urllib.parse import urlsplit

import psycopg
import structlog

from audit.checkpoint import MAX_CHECKPOINT_BYTES, Checkpoint, DecodedCheckpoint, decode_checkpoint
from audit.errors import AuditLogError
from keys import KeyFileError
from keys.filemodes import PRIVATE_FILE_MODE, private_dir
from keys.files import atomic_write

__all__ = ["CheckpointAnchor", "FileAnchor", "PgAnchor", "anchor_inside"]

_log = structlog.get_logger(__name__)

_CONNECT_TIMEOUT: Final = 10
"""Seconds to wait for PostgreSQL before an anchor read or write fails."""

_LOAD: Final = "SELECT checkpoint FROM audit_anchors WHERE log_id = %s"
# Inserts the first row, or moves it forward; a row at a later seq (or another checkpoint at
# the same seq) is left alone and nothing is returned. The table's trigger refuses the same.
_STORE: Final = """
    INSERT INTO audit_anchors AS a (log_id, seq, checkpoint) VALUES (%s, %s, %s)
    ON CONFLICT (log_id) DO UPDATE
        SET seq = EXCLUDED.seq, checkpoint = EXCLUDED.checkpoint, updated_at = now()
        WHERE a.seq < EXCLUDED.seq OR a.checkpoint = EXCLUDED.checkpoint
    RETURNING a.seq
"""
_STORED_SEQ: Final = "SELECT seq FROM audit_anchors WHERE log_id = %s"


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


def _decode(data: bytes, where: str) -> DecodedCheckpoint:
    """The checkpoint line an anchor held; ``anchor_unreadable`` when it is not one."""
    try:
        return decode_checkpoint(data.rstrip(b"\n"))
    except AuditLogError as exc:
        raise AuditLogError(
            f"the audit anchor {where} is not a checkpoint: {exc.detail}",
            reason="anchor_unreadable",
        ) from exc


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
        decoded = _decode(data, str(self.path))
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


class PgAnchor:
    """The anchor as the row ``log_id`` of ``audit_anchors`` in PostgreSQL (DESIGN §8).

    Off the log's host: rewinding that host's disk, log and anchor file together, leaves the
    row where it was. The database itself refuses to move a row back (a conditional upsert,
    and a trigger for any other writer). One short synchronous connection per call: the log
    calls this from its writer thread (or the CLI), at checkpoints only.
    """

    def __init__(self, database_url: str, log_id: str) -> None:
        self.database_url = database_url
        self.log_id = log_id

    @property
    def where(self) -> str:
        """The server, database and row, without credentials."""
        url = urlsplit(self.database_url)
        return f"PostgreSQL {url.hostname}{url.path} audit_anchors[{self.log_id}]"

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        """A new autocommit connection to the database."""
        return psycopg.connect(self.database_url, autocommit=True, connect_timeout=_CONNECT_TIMEOUT)

    def load(self) -> DecodedCheckpoint | None:
        """The checkpoint in the log's row; None when there is no row (or no table yet)."""
        try:
            with self._connect() as conn:
                row = conn.execute(_LOAD, (self.log_id,)).fetchone()
        except psycopg.errors.UndefinedTable:
            return None
        except (psycopg.Error, OSError) as exc:
            raise AuditLogError(
                f"cannot read the audit anchor at {self.where}: {type(exc).__name__}: {exc}",
                reason="anchor_unreadable",
            ) from exc
        if row is None:
            return None
        line = row[0]
        if not isinstance(line, str) or len(line) > MAX_CHECKPOINT_BYTES:
            raise AuditLogError(
                f"the audit anchor {self.where} is not a checkpoint line",
                reason="anchor_unreadable",
            )
        return _decode(line.encode(), self.where)

    def store(self, checkpoint: Checkpoint) -> None:
        """Move the row forward to ``checkpoint``; ``anchor_regression`` when the database
        holds a later one (or another one at the same seq)."""
        line = checkpoint.to_line().rstrip(b"\n").decode()
        try:
            with self._connect() as conn:
                moved = conn.execute(_STORE, (self.log_id, checkpoint.seq, line)).fetchone()
                held = (
                    None
                    if moved is not None
                    else conn.execute(_STORED_SEQ, (self.log_id,)).fetchone()
                )
        except psycopg.errors.UndefinedTable as exc:
            raise AuditLogError(
                f"the audit anchor table is missing at {self.where}: start the audit daemon "
                "or run `sealflow db upgrade`",
                reason="anchor_write_failed",
            ) from exc
        except (psycopg.Error, OSError) as exc:
            raise AuditLogError(
                f"cannot write the audit anchor at {self.where}: {type(exc).__name__}: {exc}",
                reason="anchor_write_failed",
            ) from exc
        if moved is None:
            stored = held[0] if held is not None else "?"
            raise AuditLogError(
                f"the database refused to move the anchor at {self.where} from seq {stored} "
                f"to {checkpoint.seq}",
                reason="anchor_regression",
            )
        _log.debug("audit_anchor_stored", seq=checkpoint.seq, anchor=self.where)
