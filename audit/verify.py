"""``verify_log``: check a whole log directory and name the first record that fails."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from audit.anchor import CheckpointAnchor
from audit.chain import ChainScan, scan_chain
from audit.checkpoint import Checkpoint, verify_checkpoint
from audit.errors import AuditLogError
from keys import TrustStore

__all__ = ["VerifyReport", "adopt_anchor", "verify_log"]


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The outcome of a verification.

    When ``ok`` is false, ``reason`` is a snake_case code (``hash_mismatch``, ``prev_mismatch``,
    ``seq_gap``, ``seq_order``, ``malformed_record``, ``torn_tail``, ``malformed_checkpoint``,
    ``checkpoint_order``, ``checkpoint_signature``, ``checkpoint_unknown_kid``,
    ``checkpoint_key_expired``, ``checkpoint_mismatch``, ``checkpoint_beyond_log``,
    ``checkpoint_chain``, ``behind_anchor``, ``anchor_mismatch``, ``anchor_unreadable``,
    ``anchor_signature``, ``anchor_missing``, ``checkpoint_stale``) and ``first_bad_seq``
    the record it concerns: the chain is intact up to ``first_bad_seq - 1`` (a missing record
    is named by its own seq). ``records`` and ``checkpoints`` count what
    verified before the failure.
    """

    ok: bool
    records: int
    checkpoints: int
    first_bad_seq: int | None
    reason: str | None
    detail: str
    location: str | None


def _broken(scan: ChainScan, reason: str, seq: int, detail: str, where: str | None) -> VerifyReport:
    """A failed report with what the scan verified before the failure."""
    return VerifyReport(
        ok=False,
        records=scan.records,
        checkpoints=scan.checkpoints,
        first_bad_seq=seq,
        reason=reason,
        detail=detail,
        location=where,
    )


def _load_anchor(anchor: CheckpointAnchor, trust: TrustStore) -> Checkpoint | None:
    """The anchored checkpoint, its signature checked; raises ``anchor_*`` failures."""
    decoded = anchor.load()
    if decoded is None:
        return None
    try:
        verify_checkpoint(decoded, trust)
    except AuditLogError as exc:
        raise AuditLogError(
            f"the anchor at {anchor.where} is not a checkpoint signed by the audit key: "
            f"{exc.detail}",
            reason="anchor_signature",
            seq=decoded.checkpoint.seq,
        ) from exc
    return decoded.checkpoint


def _stale(scan: ChainScan, max_unsigned_age: float, now: float) -> str | None:
    """Why the records after the newest checkpoint cannot be waiting for the writer's next one:
    that checkpoint (or, with none, the first record) is older than ``max_unsigned_age``. The
    writer signs at least every checkpoint interval while records come, so only a cut (or a
    writer that stopped without signing) leaves such a tail."""
    if scan.last_seq == scan.last_checkpoint_seq:
        return None
    if scan.last_checkpoint is not None:
        age = now - scan.last_checkpoint.ts.timestamp()
        since = f"the newest checkpoint (seq {scan.last_checkpoint_seq}) is {age:.0f} s old"
    elif scan.first_unsigned_ts is not None:
        age = now - scan.first_unsigned_ts.timestamp()
        since = f"no checkpoint signs any, and the first was written {age:.0f} s ago"
    else:
        return None
    if age <= max_unsigned_age:
        return None
    return (
        f"{scan.last_seq - scan.last_checkpoint_seq} record(s) follow the last checkpoint and "
        f"{since}, more than the checkpoint interval plus slack ({max_unsigned_age:.0f} s): "
        "later checkpoints were cut, or the writer stopped without signing (restarting it "
        "signs the tail)"
    )


def verify_log(
    directory: Path,
    trust: TrustStore,
    *,
    anchor: CheckpointAnchor | None = None,
    max_unsigned_age: float | None = None,
    now: float | None = None,
) -> VerifyReport:
    """Verify every record's hash, link and seq (across segments) and every checkpoint's
    signature, record and link to the checkpoint before; streams the files, so memory does
    not grow with the log.

    With an ``anchor``, the log must hold the anchored checkpoint (``behind_anchor`` when it
    was cut back), and a log with chained checkpoints must have one (``anchor_missing``).
    With ``max_unsigned_age`` (the checkpoint interval plus slack), records after the newest
    checkpoint fail with ``checkpoint_stale`` when that checkpoint is older than that.
    A missing directory is an empty log, unless an anchor says otherwise. A torn final line
    fails with ``torn_tail``: either a writer is mid-write or it crashed (opening the log for
    writing repairs it).
    """
    moment = time.time() if now is None else now
    empty = ChainScan()
    anchored: Checkpoint | None = None
    if anchor is not None:
        try:
            anchored = _load_anchor(anchor, trust)
        except AuditLogError as exc:
            return _broken(empty, exc.reason, exc.seq or 1, exc.detail, anchor.where)
    if not directory.exists() and anchored is None:
        return VerifyReport(
            ok=True,
            records=0,
            checkpoints=0,
            first_bad_seq=None,
            reason=None,
            detail=f"no audit log at {directory}: empty",
            location=None,
        )
    scan = scan_chain(directory, trust=trust, anchor=anchored)
    if scan.failure is not None:
        failure = scan.failure
        return _broken(scan, failure.reason, failure.seq, failure.detail, failure.location)
    torn = scan.torn_record or scan.torn_checkpoint
    if torn is not None:
        what = "record" if torn is scan.torn_record else "checkpoint"
        return _broken(
            scan,
            "torn_tail",
            scan.last_seq + 1,
            f"the final {what} line is incomplete ({torn.length} bytes, no newline): a "
            "write in progress or a crash; reopening the log for writing truncates it",
            torn.location,
        )
    chained = scan.last_checkpoint is not None and scan.last_checkpoint.prev is not None
    if anchor is not None and anchored is None and chained:
        return _broken(
            scan,
            "anchor_missing",
            1,
            f"the log has chained checkpoints but nothing is anchored at {anchor.where}: the "
            "anchor was deleted (or is configured elsewhere: SEALFLOW_AUDIT_ANCHOR_FILE, or on "
            "PostgreSQL SEALFLOW_NAMESPACE and SEALFLOW_AUDIT_LOG_NAME)",
            anchor.where,
        )
    if max_unsigned_age is not None:
        stale = _stale(scan, max_unsigned_age, moment)
        if stale is not None:
            return _broken(scan, "checkpoint_stale", scan.last_checkpoint_seq + 1, stale, None)
    unsigned = scan.last_seq - scan.last_checkpoint_seq
    if scan.records == 0:
        detail = "empty log"
    elif scan.checkpoints == 0:
        detail = "no checkpoints: removal of records from the end cannot be detected"
    elif unsigned:
        detail = f"{unsigned} record(s) after the last checkpoint are not yet signed"
    else:
        detail = "every record is covered by a signed checkpoint"
    if anchor is not None and scan.checkpoints:
        detail += (
            f"; the anchor ({anchor.where}) holds seq {anchored.seq}"
            if anchored is not None
            else f"; no anchored checkpoint at {anchor.where} (a log from before anchoring: "
            "the audit daemon anchors it when it next starts)"
        )
    return VerifyReport(
        ok=True,
        records=scan.records,
        checkpoints=scan.checkpoints,
        first_bad_seq=None,
        reason=None,
        detail=detail,
        location=None,
    )


def adopt_anchor(directory: Path, trust: TrustStore, anchor: CheckpointAnchor) -> Checkpoint:
    """Anchor the newest checkpoint of an intact log whose anchor is gone: an operator's
    deliberate act after a lost anchor (a cut made before it cannot be detected any more).

    Raises ``anchor_exists`` when something is anchored already, ``anchor_refused`` when the
    log does not verify or has no checkpoint.
    """
    if anchor.load() is not None:
        raise AuditLogError(
            f"an anchor exists at {anchor.where}; only a missing one is adopted",
            reason="anchor_exists",
        )
    scan = scan_chain(directory, trust=trust)
    problem = (
        f"it does not verify ({scan.failure.reason}: {scan.failure.detail})"
        if scan.failure is not None
        else "it ends in a torn line; let the audit daemon open it first"
        if scan.torn_record is not None or scan.torn_checkpoint is not None
        else "it has no checkpoint"
        if scan.last_checkpoint is None
        else None
    )
    if problem is not None or scan.last_checkpoint is None:
        raise AuditLogError(f"not anchoring the log: {problem}", reason="anchor_refused")
    anchor.store(scan.last_checkpoint)
    return scan.last_checkpoint
