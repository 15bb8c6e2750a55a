"""The writer of the audit log: appends events as hash-chained records and signs checkpoints.

Durability: ``append`` returns only after its records are fsynced, so a caller may ack the
messages they came from. Duplicates are dropped by ``event_id`` against the last
``dedup_window`` records (an id older than that is no longer recognised — the bound keeps
memory at roughly 100 bytes per remembered id, ~100 MB for the default million).

One writer per directory (an exclusive ``flock`` on ``.lock``); not thread-safe. The calls
block on disk I/O, so an asyncio caller should run them in a worker thread.

With an anchor (``audit.anchor``), every checkpoint is also stored there once it is on disk,
and a log that lacks the anchored checkpoint (cut back, or its checkpoints rewritten) is
refused at open.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Final, Self

import structlog

from audit.anchor import CheckpointAnchor
from audit.chain import TornLine, scan_chain
from audit.checkpoint import AUDIT_SERVICE, CHECKPOINT_GENESIS, Checkpoint, sign_checkpoint
from audit.errors import AuditLogError
from audit.record import AuditRecord, encode_record
from audit.segments import CHECKPOINTS_FILE, LOCK_FILE, segment_path
from keys import SigningKey
from keys.filemodes import PRIVATE_FILE_MODE, private_dir
from schemas import AuditEvent

__all__ = ["AuditLog"]

_log = structlog.get_logger(__name__)

_FILE_MODE: Final = PRIVATE_FILE_MODE


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _close_all(fds: list[int]) -> None:
    """Close every descriptor, then raise the first error if any close failed."""
    first_error: OSError | None = None
    for fd in fds:
        try:
            os.close(fd)
        except OSError as exc:
            first_error = first_error or exc
    if first_error is not None:
        raise AuditLogError(
            f"closing the audit log failed: {first_error}", reason="close_failed"
        ) from first_error


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _truncate_torn(torn: TornLine, what: str) -> None:
    with torn.path.open("r+b") as file:
        file.truncate(torn.offset)
        file.flush()
        os.fsync(file.fileno())
    _log.warning(
        "audit_torn_tail_truncated",
        what=what,
        location=torn.location,
        bytes=torn.length,
        note="an unacknowledged write cut by a crash; its event will be redelivered",
    )


class _DedupIndex:
    """The event ids of the last ``window`` records: a set for lookups, a FIFO for eviction."""

    __slots__ = ("_ids", "_order", "_window")

    def __init__(self, window: int) -> None:
        self._window = window
        self._ids: set[int] = set()
        self._order: deque[int] = deque()

    def __contains__(self, event_id: str) -> bool:
        return int(event_id, 16) in self._ids

    def add(self, event_id: str) -> None:
        if self._window == 0:
            return
        key = int(event_id, 16)
        self._ids.add(key)
        self._order.append(key)
        if len(self._order) > self._window:
            self._ids.discard(self._order.popleft())


class AuditLog:
    """An open, locked audit log directory that records are appended to."""

    def __init__(
        self,
        directory: Path,
        *,
        signer: SigningKey | None,
        lock_fd: int,
        checkpoint_every: int,
        checkpoint_interval: float,
        segment_max_records: int,
        dedup: _DedupIndex,
        last_seq: int,
        last_hash: str,
        segment: int,
        segment_records: int,
        last_checkpoint: Checkpoint | None,
        anchor: CheckpointAnchor | None = None,
    ) -> None:
        """Use :meth:`open`; the constructor takes the state a scan recovered."""
        self._directory = directory
        self._signer = signer
        self._lock_fd: int | None = lock_fd
        self._checkpoint_every = checkpoint_every
        self._checkpoint_interval = checkpoint_interval
        self._segment_max = segment_max_records
        self._dedup = dedup
        self._last_seq = last_seq
        self._last_hash = last_hash
        self._segment = max(segment, 1)
        self._segment_records = segment_records
        self._segment_fd: int | None = None
        self._checkpoint_fd: int | None = None
        self._last_checkpoint_seq = last_checkpoint.seq if last_checkpoint is not None else 0
        self._last_checkpoint_digest = (
            last_checkpoint.digest if last_checkpoint is not None else CHECKPOINT_GENESIS
        )
        self._last_checkpoint_time = time.monotonic()
        self._anchor = anchor
        self._poisoned: str | None = None

    @classmethod
    def open(
        cls,
        directory: Path,
        *,
        signer: SigningKey | None,
        checkpoint_every: int = 1000,
        checkpoint_interval: float = 60.0,
        segment_max_records: int = 100_000,
        dedup_window: int = 1_000_000,
        anchor: CheckpointAnchor | None = None,
    ) -> AuditLog:
        """Open (creating if needed) the log in ``directory`` for appending.

        Scans every segment and checkpoint to recover the last seq and hash and the ids of the
        last ``dedup_window`` records; a torn final line is truncated with a warning. Any other
        inconsistency raises :class:`AuditLogError` whose ``reason`` and ``seq`` say what and
        where. Without a ``signer`` no checkpoints are written.

        With an ``anchor``, a log that does not hold the anchored checkpoint is refused
        (``behind_anchor`` when it was cut back, ``anchor_mismatch`` when rewritten), and so is
        a log with chained checkpoints and no anchor at all (``anchor_missing``); a log from
        before chaining starts being anchored. Once open, records a crash left unsigned are
        checkpointed and the anchor is brought up to date.

        Deduplication is bounded: an event whose id was last seen more than ``dedup_window``
        records ago is appended again. Opening reads the whole log (roughly 60k records/s).
        """
        if checkpoint_every < 1 or checkpoint_interval <= 0 or segment_max_records < 1:
            raise AuditLogError(
                "checkpoint_every, checkpoint_interval and segment_max_records must be positive",
                reason="invalid_setting",
            )
        if dedup_window < 0:
            raise AuditLogError("dedup_window must not be negative", reason="invalid_setting")
        if signer is not None and signer.service != AUDIT_SERVICE:
            raise AuditLogError(
                f"checkpoints must be signed with an {AUDIT_SERVICE!r} key, not a "
                f"{signer.service!r} one",
                reason="wrong_signer",
            )
        try:
            private_dir(directory)
            lock_fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise AuditLogError(
                f"cannot open the audit log directory {directory}: {exc}", reason="open_failed"
            ) from exc
        try:
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise AuditLogError(
                    f"another process has the audit log in {directory} open for writing",
                    reason="locked",
                ) from exc
            dedup = _DedupIndex(dedup_window)
            anchored = anchor.load() if anchor is not None else None
            scan = scan_chain(
                directory,
                trust=None,
                anchor=anchored.checkpoint if anchored is not None else None,
                on_record=lambda r: dedup.add(r.event.event_id),
            )
            chained = scan.last_checkpoint is not None and scan.last_checkpoint.prev is not None
            if anchor is not None and anchored is None and chained and scan.failure is None:
                raise AuditLogError(
                    f"refusing to open the audit log: it has chained checkpoints but nothing is "
                    f"anchored at {anchor.where} (deleted with a cut?). Check the log with "
                    "`sealflow audit verify`, then re-anchor it on purpose with "
                    "`sealflow audit anchor --adopt`",
                    reason="anchor_missing",
                    seq=1,
                )
            if scan.failure is not None:
                failure = scan.failure
                where = f" ({failure.location})" if failure.location else ""
                raise AuditLogError(
                    f"refusing to open a broken audit log at seq {failure.seq}{where}: "
                    f"{failure.reason}: {failure.detail}",
                    reason=failure.reason,
                    seq=failure.seq,
                    location=failure.location,
                )
            try:
                if scan.torn_record is not None:
                    _truncate_torn(scan.torn_record, "record")
                if scan.torn_checkpoint is not None:
                    _truncate_torn(scan.torn_checkpoint, "checkpoint")
            except OSError as exc:
                raise AuditLogError(
                    f"cannot truncate a torn final line: {exc}", reason="open_failed"
                ) from exc
        except BaseException:
            os.close(lock_fd)
            raise
        if anchor is not None and anchored is None and scan.checkpoints:
            _log.warning(
                "audit_anchor_started",
                anchor=anchor.where,
                checkpoints=scan.checkpoints,
                note="a log from before anchoring: a cut made before now cannot be detected",
            )
        log = cls(
            directory,
            signer=signer,
            lock_fd=lock_fd,
            checkpoint_every=checkpoint_every,
            checkpoint_interval=checkpoint_interval,
            segment_max_records=segment_max_records,
            dedup=dedup,
            last_seq=scan.last_seq,
            last_hash=scan.last_hash,
            segment=scan.last_segment,
            segment_records=scan.last_segment_records,
            last_checkpoint=scan.last_checkpoint,
            anchor=anchor,
        )
        try:
            if log.checkpoint() is None and anchor is not None and scan.last_checkpoint:
                behind = anchored is None or anchored.checkpoint.seq < scan.last_checkpoint.seq
                if behind:
                    log._store_anchor(scan.last_checkpoint)
        except BaseException:
            log.close()
            raise
        return log

    @property
    def last_seq(self) -> int:
        """The seq of the last record (0 for an empty log)."""
        return self._last_seq

    @property
    def last_hash(self) -> str:
        """The hash of the last record (64 zeros for an empty log)."""
        return self._last_hash

    @property
    def directory(self) -> Path:
        """The log directory."""
        return self._directory

    def __contains__(self, event_id: str) -> bool:
        """Whether ``event_id`` is among the ids the dedup window remembers."""
        return event_id in self._dedup

    def _check_usable(self) -> None:
        if self._lock_fd is None:
            raise AuditLogError("the audit log is closed", reason="closed")
        if self._poisoned is not None:
            raise AuditLogError(
                f"the audit log failed to write ({self._poisoned}); close and reopen it",
                reason="write_failed",
            )

    def append(self, events: Sequence[AuditEvent]) -> list[AuditRecord]:
        """Append the events not yet in the log, fsync, and return their records.

        Events whose ``event_id`` is already in the log (or earlier in ``events``) are skipped
        and not returned. All new records are written, then fsynced once (once per segment
        when the batch crosses into a new one); a checkpoint follows when one is due.
        On a disk error the log refuses further appends: reopen it to recover.
        """
        self._check_usable()
        now = datetime.now(UTC)
        seen: set[str] = set()
        records: list[AuditRecord] = []
        chunks: list[tuple[int, list[bytes]]] = []
        seq, prev = self._last_seq, self._last_hash
        segment, segment_records = self._segment, self._segment_records
        for event in events:
            if event.event_id in seen or event.event_id in self._dedup:
                continue
            seen.add(event.event_id)
            if segment_records >= self._segment_max:
                segment, segment_records = segment + 1, 0
            seq += 1
            record, line = encode_record(seq, now, event, prev)
            prev = record.hash
            segment_records += 1
            records.append(record)
            if not chunks or chunks[-1][0] != segment:
                chunks.append((segment, []))
            chunks[-1][1].append(line)
        if not records:
            return records
        try:
            for number, lines in chunks:
                fd = self._segment_file(number)
                _write_all(fd, b"".join(lines))
                os.fsync(fd)
        except OSError as exc:
            self._poisoned = f"{type(exc).__name__}: {exc}"
            raise AuditLogError(
                f"writing audit records failed: {exc}", reason="write_failed"
            ) from exc
        self._last_seq, self._last_hash = seq, prev
        self._segment, self._segment_records = segment, segment_records
        for record in records:
            self._dedup.add(record.event.event_id)
        if self._last_seq - self._last_checkpoint_seq >= self._checkpoint_every:
            self.checkpoint()
        else:
            self.checkpoint_if_due()
        return records

    def _segment_file(self, number: int) -> int:
        if self._segment_fd is not None and number == self._segment:
            return self._segment_fd
        if self._segment_fd is not None:
            os.close(self._segment_fd)
            self._segment_fd = None
        path = segment_path(self._directory, number)
        created = not path.exists()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, _FILE_MODE)
        self._segment_fd = fd
        self._segment = number
        if created:
            _fsync_dir(self._directory)
        return fd

    def checkpoint_if_due(self) -> Checkpoint | None:
        """Write a checkpoint if there are unsigned records and ``checkpoint_interval`` has
        passed since the last one; the daemon calls this on a timer."""
        if time.monotonic() - self._last_checkpoint_time < self._checkpoint_interval:
            return None
        return self.checkpoint()

    def checkpoint(self) -> Checkpoint | None:
        """Sign and fsync a checkpoint of the last record now, if any record is unsigned.

        Returns None when there is nothing new or the log has no signer.
        """
        self._check_usable()
        if self._signer is None or self._last_seq == self._last_checkpoint_seq:
            return None
        checkpoint = sign_checkpoint(
            self._signer,
            self._last_seq,
            self._last_hash,
            datetime.now(UTC),
            prev=self._last_checkpoint_digest,
        )
        try:
            if self._checkpoint_fd is None:
                path = self._directory / CHECKPOINTS_FILE
                created = not path.exists()
                self._checkpoint_fd = os.open(
                    path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, _FILE_MODE
                )
                if created:
                    _fsync_dir(self._directory)
            _write_all(self._checkpoint_fd, checkpoint.to_line())
            os.fsync(self._checkpoint_fd)
        except OSError as exc:
            self._poisoned = f"{type(exc).__name__}: {exc}"
            raise AuditLogError(
                f"writing an audit checkpoint failed: {exc}", reason="write_failed"
            ) from exc
        self._last_checkpoint_seq = checkpoint.seq
        self._last_checkpoint_digest = checkpoint.digest
        self._last_checkpoint_time = time.monotonic()
        self._store_anchor(checkpoint)
        # A witness off the disk too, wherever the daemon's JSON logs are shipped.
        _log.info(
            "audit_checkpoint",
            seq=checkpoint.seq,
            hash=checkpoint.hash,
            digest=checkpoint.digest,
            kid=checkpoint.kid,
        )
        return checkpoint

    def _store_anchor(self, checkpoint: Checkpoint) -> None:
        """Anchor ``checkpoint``; a failure stops appends, as a failed write does."""
        if self._anchor is None:
            return
        try:
            self._anchor.store(checkpoint)
        except AuditLogError as exc:
            self._poisoned = exc.detail
            raise

    def close(self) -> None:
        """Sign a final checkpoint if records are unsigned, then release the files and lock."""
        if self._lock_fd is None:
            return
        lock_fd = self._lock_fd
        try:
            if self._poisoned is None:
                self.checkpoint()
        finally:
            fds = [fd for fd in (self._segment_fd, self._checkpoint_fd) if fd is not None]
            self._segment_fd = self._checkpoint_fd = self._lock_fd = None
            fds.append(lock_fd)  # last: closing it releases the flock
            _close_all(fds)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
