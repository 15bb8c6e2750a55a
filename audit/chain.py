"""One streaming pass over a log directory that checks the chain, the checkpoints' own chain,
and the anchored checkpoint.

Shared by ``AuditLog.open`` (which must never append onto a broken or cut-back chain) and
``verify_log``. Memory stays bounded: records are read one line at a time and checkpoints are
consumed in step with the records they refer to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from audit.checkpoint import (
    CHECKPOINT_GENESIS,
    MAX_CHECKPOINT_BYTES,
    Checkpoint,
    DecodedCheckpoint,
    decode_checkpoint,
    verify_checkpoint,
)
from audit.errors import AuditLogError
from audit.record import GENESIS_HASH, MAX_RECORD_BYTES, AuditRecord, decode_record
from audit.segments import CHECKPOINTS_FILE, Line, list_segments, read_lines, segment_path
from keys import TrustStore

__all__ = ["ChainFailure", "ChainScan", "TornLine", "scan_chain"]


@dataclass(frozen=True, slots=True)
class ChainFailure:
    """The first thing found wrong: a reason code, the seq it concerns, and where."""

    reason: str
    seq: int
    detail: str
    location: str | None


@dataclass(frozen=True, slots=True)
class TornLine:
    """A final line with no newline: a crash (or a writer) mid-write."""

    path: Path
    offset: int
    length: int
    location: str


@dataclass(slots=True)
class ChainScan:
    """What a scan established about a log directory."""

    records: int = 0
    checkpoints: int = 0
    last_seq: int = 0
    last_hash: str = GENESIS_HASH
    last_segment: int = 0
    last_segment_records: int = 0
    last_checkpoint_seq: int = 0
    last_checkpoint: Checkpoint | None = None
    first_unsigned_ts: datetime | None = None
    """When the first record after the last checkpoint was written."""
    anchor_found: bool = False
    failure: ChainFailure | None = None
    torn_record: TornLine | None = None
    torn_checkpoint: TornLine | None = None


@dataclass(frozen=True, slots=True)
class _RecordLine:
    line: Line
    location: str


def _record_lines(directory: Path, scan: ChainScan) -> Iterator[_RecordLine]:
    segments = list_segments(directory)
    index = 0
    while index < len(segments):
        number, path = segments[index]
        scan.last_segment, scan.last_segment_records = number, 0
        is_last = index == len(segments) - 1
        for line in read_lines(path, limit=MAX_RECORD_BYTES):
            location = f"{path.name}:{line.number}"
            if not line.complete and is_last and not line.too_long:
                scan.torn_record = TornLine(path, line.offset, len(line.data), location)
                return
            yield _RecordLine(line, location)
        index += 1
        # A writer may have rolled over while we read: its checkpoints can refer to records
        # in a segment that did not exist when the directory was listed.
        following = segment_path(directory, number + 1)
        if index == len(segments) and following.is_file():
            segments.append((number + 1, following))


class _Checkpoints:
    """The checkpoints file read lazily, in order, one checkpoint ahead of the records."""

    def __init__(self, directory: Path, scan: ChainScan) -> None:
        path = directory / CHECKPOINTS_FILE
        self._scan = scan
        self._lines: Iterator[Line] = (
            read_lines(path, limit=MAX_CHECKPOINT_BYTES) if path.is_file() else iter(())
        )
        self._path = path
        self.pending: DecodedCheckpoint | None = None
        self.location: str | None = None
        self._previous_seq = 0
        self._previous_digest: str | None = None
        self._chained = False

    def advance(self) -> None:
        """Load the next checkpoint into ``pending`` (None at the end); raises when malformed."""
        self.pending = None
        line = next(self._lines, None)
        if line is None:
            return
        self.location = f"{self._path.name}:{line.number}"
        if not line.complete and not line.too_long:
            self._scan.torn_checkpoint = TornLine(
                self._path, line.offset, len(line.data), self.location
            )
            return
        if line.too_long:
            raise AuditLogError(
                f"checkpoint line is longer than {MAX_CHECKPOINT_BYTES} bytes",
                reason="malformed_checkpoint",
                seq=self._previous_seq + 1,
            )
        try:
            decoded = decode_checkpoint(line.data)
        except AuditLogError as exc:
            exc.seq = self._previous_seq + 1
            raise
        if decoded.checkpoint.seq <= self._previous_seq:
            raise AuditLogError(
                f"checkpoint for seq {decoded.checkpoint.seq} follows one for seq "
                f"{self._previous_seq}",
                reason="checkpoint_order",
                seq=decoded.checkpoint.seq,
            )
        self._check_link(decoded.checkpoint)
        self._previous_seq = decoded.checkpoint.seq
        self._previous_digest = decoded.checkpoint.digest
        self.pending = decoded

    def _check_link(self, checkpoint: Checkpoint) -> None:
        """Each chained checkpoint names the one before it; an unchained line (written before
        chaining) may only come before the first chained one."""
        if checkpoint.prev is None:
            if self._chained:
                raise AuditLogError(
                    f"checkpoint for seq {checkpoint.seq} is not chained, though earlier ones "
                    "are (a checkpoint line was replaced)",
                    reason="checkpoint_chain",
                    seq=checkpoint.seq,
                )
            return
        expected = self._previous_digest or CHECKPOINT_GENESIS
        if checkpoint.prev != expected:
            raise AuditLogError(
                f"checkpoint for seq {checkpoint.seq} does not link to the checkpoint before it "
                f"(seq {self._previous_seq}): a checkpoint was removed or replaced",
                reason="checkpoint_chain",
                seq=checkpoint.seq,
            )
        self._chained = True


def _seq_failure(expected: int, found: int, lines: Iterator[_RecordLine]) -> tuple[str, str]:
    if found < expected:
        return "seq_order", f"expected record {expected}, found {found} (out of order or repeated)"
    following = next(lines, None)
    if following is not None and following.line.complete:
        try:
            next_seq = decode_record(following.line.data).record.seq
        except AuditLogError:
            next_seq = None
        if next_seq == expected:
            return "seq_order", f"expected record {expected}, found {found} before it (reordered)"
    return "seq_gap", f"record {expected} is missing: the next record found is {found}"


def _check_anchor(anchor: Checkpoint, checkpoint: Checkpoint, scan: ChainScan) -> None:
    """Compare a checkpoint of the log with the anchored one, once the log reaches its seq."""
    if scan.anchor_found or checkpoint.seq < anchor.seq:
        return
    if checkpoint != anchor:
        raise AuditLogError(
            f"the log's checkpoint for seq {checkpoint.seq} is not the anchored checkpoint for "
            f"seq {anchor.seq} (the checkpoints were rewritten)",
            reason="anchor_mismatch",
            seq=min(checkpoint.seq, anchor.seq),
        )
    scan.anchor_found = True


def _anchor_failure(anchor: Checkpoint, scan: ChainScan) -> AuditLogError:
    """Why a log that never reached the anchored checkpoint fails: cut back, or rewritten."""
    if scan.last_seq < anchor.seq or scan.last_checkpoint_seq < anchor.seq:
        return AuditLogError(
            f"the log ends at seq {scan.last_seq} (last checkpoint {scan.last_checkpoint_seq}) "
            f"but its anchor holds a checkpoint for seq {anchor.seq}: records and checkpoints "
            "were cut from the end",
            reason="behind_anchor",
            seq=min(scan.last_seq, scan.last_checkpoint_seq) + 1,
        )
    return AuditLogError(
        f"the anchored checkpoint for seq {anchor.seq} is not in the log",
        reason="anchor_mismatch",
        seq=anchor.seq,
    )


def scan_chain(
    directory: Path,
    *,
    trust: TrustStore | None,
    anchor: Checkpoint | None = None,
    on_record: Callable[[AuditRecord], None] | None = None,
) -> ChainScan:
    """Check every record's hash, seq and link, every checkpoint against its record and the
    checkpoint before it, and, given an ``anchor``, that the log holds the anchored checkpoint.

    With ``trust``, checkpoint signatures are verified too. Stops at the first failure, which
    is returned in ``failure`` (never raised). A torn final record or checkpoint line is
    reported in ``torn_record``/``torn_checkpoint`` and not counted.
    """
    scan = ChainScan()
    checkpoints = _Checkpoints(directory, scan)
    location: str | None = None
    try:
        checkpoints.advance()
        lines = _record_lines(directory, scan)
        for item in lines:
            location = item.location
            expected = scan.last_seq + 1
            if not item.line.complete:
                raise AuditLogError(
                    f"record line is longer than {MAX_RECORD_BYTES} bytes"
                    if item.line.too_long
                    else "segment ends in the middle of a record but is not the last one",
                    reason="malformed_record",
                    seq=expected,
                )
            try:
                decoded = decode_record(item.line.data)
            except AuditLogError as exc:
                exc.seq = expected
                raise
            record = decoded.record
            if record.seq != expected:
                reason, detail = _seq_failure(expected, record.seq, lines)
                raise AuditLogError(detail, reason=reason, seq=expected)
            if decoded.computed_hash != record.hash:
                raise AuditLogError(
                    f"record {expected}: content does not match its hash (edited)",
                    reason="hash_mismatch",
                    seq=expected,
                )
            if record.prev != scan.last_hash:
                raise AuditLogError(
                    f"record {expected}: prev does not link to record {expected - 1}",
                    reason="prev_mismatch",
                    seq=expected,
                )
            if record.seq == scan.last_checkpoint_seq + 1:
                scan.first_unsigned_ts = record.ts
            scan.records += 1
            scan.last_seq, scan.last_hash = record.seq, record.hash
            scan.last_segment_records += 1
            if on_record is not None:
                on_record(record)
            pending = checkpoints.pending
            if pending is not None and pending.checkpoint.seq == record.seq:
                if trust is not None:
                    verify_checkpoint(pending, trust)
                if pending.checkpoint.hash != record.hash:
                    raise AuditLogError(
                        f"checkpoint for seq {record.seq} signs a different hash than the "
                        "record has (the chain was rewritten)",
                        reason="checkpoint_mismatch",
                        seq=record.seq,
                    )
                if anchor is not None:
                    _check_anchor(anchor, pending.checkpoint, scan)
                scan.checkpoints += 1
                scan.last_checkpoint_seq = record.seq
                scan.last_checkpoint = pending.checkpoint
                checkpoints.advance()
        pending = checkpoints.pending
        if pending is not None:
            if trust is not None:
                verify_checkpoint(pending, trust)
            raise AuditLogError(
                f"a checkpoint signs seq {pending.checkpoint.seq} but the log ends at "
                f"{scan.last_seq} (records were removed)",
                reason="checkpoint_beyond_log",
                seq=scan.last_seq + 1,
            )
        if anchor is not None and not scan.anchor_found:
            raise _anchor_failure(anchor, scan)
    except OSError as exc:
        scan.failure = ChainFailure(
            reason="read_error",
            seq=scan.last_seq + 1,
            detail=f"cannot read the log: {exc}",
            location=location,
        )
    except AuditLogError as exc:
        about_checkpoint = (
            exc.reason.startswith(("checkpoint", "anchor")) or exc.reason == "malformed_checkpoint"
        )
        failing_location = exc.location or (checkpoints.location if about_checkpoint else location)
        scan.failure = ChainFailure(
            reason=exc.reason,
            seq=exc.seq if exc.seq is not None else scan.last_seq + 1,
            detail=exc.detail,
            location=failing_location,
        )
    return scan
