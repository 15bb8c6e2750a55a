"""``verify_log``: check a whole log directory and name the first record that fails."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from audit.chain import scan_chain
from keys import TrustStore

__all__ = ["VerifyReport", "verify_log"]


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The outcome of a verification.

    When ``ok`` is false, ``reason`` is a snake_case code (``hash_mismatch``, ``prev_mismatch``,
    ``seq_gap``, ``seq_order``, ``malformed_record``, ``torn_tail``, ``malformed_checkpoint``,
    ``checkpoint_order``, ``checkpoint_signature``, ``checkpoint_unknown_kid``,
    ``checkpoint_key_expired``, ``checkpoint_mismatch``, ``checkpoint_beyond_log``) and
    ``first_bad_seq`` the record it concerns: the chain is intact up to ``first_bad_seq - 1``
    (a missing record is named by its own seq). ``records`` and ``checkpoints`` count what
    verified before the failure.
    """

    ok: bool
    records: int
    checkpoints: int
    first_bad_seq: int | None
    reason: str | None
    detail: str
    location: str | None


def verify_log(directory: Path, trust: TrustStore) -> VerifyReport:
    """Verify every record's hash, link and seq (across segments) and every checkpoint's
    signature and record; streams the files, so memory does not grow with the log.

    A missing directory is an empty log. A torn final line fails with ``torn_tail``: either a
    writer is mid-write or it crashed (opening the log for writing repairs it).
    """
    if not directory.exists():
        return VerifyReport(
            ok=True,
            records=0,
            checkpoints=0,
            first_bad_seq=None,
            reason=None,
            detail=f"no audit log at {directory}: empty",
            location=None,
        )
    scan = scan_chain(directory, trust=trust)
    if scan.failure is not None:
        failure = scan.failure
        return VerifyReport(
            ok=False,
            records=scan.records,
            checkpoints=scan.checkpoints,
            first_bad_seq=failure.seq,
            reason=failure.reason,
            detail=failure.detail,
            location=failure.location,
        )
    torn = scan.torn_record or scan.torn_checkpoint
    if torn is not None:
        what = "record" if torn is scan.torn_record else "checkpoint"
        return VerifyReport(
            ok=False,
            records=scan.records,
            checkpoints=scan.checkpoints,
            first_bad_seq=scan.last_seq + 1,
            reason="torn_tail",
            detail=(
                f"the final {what} line is incomplete ({torn.length} bytes, no newline): a "
                "write in progress or a crash; reopening the log for writing truncates it"
            ),
            location=torn.location,
        )
    unsigned = scan.last_seq - scan.last_checkpoint_seq
    if scan.records == 0:
        detail = "empty log"
    elif scan.checkpoints == 0:
        detail = "no checkpoints: removal of records from the end cannot be detected"
    elif unsigned:
        detail = f"{unsigned} record(s) after the last checkpoint are not yet signed"
    else:
        detail = "every record is covered by a signed checkpoint"
    return VerifyReport(
        ok=True,
        records=scan.records,
        checkpoints=scan.checkpoints,
        first_bad_seq=None,
        reason=None,
        detail=detail,
        location=None,
    )
