"""The audit package's one error type, under :class:`schemas.SealflowError`."""

from __future__ import annotations

from schemas.errors import SealflowError

__all__ = ["AuditLogError"]


class AuditLogError(SealflowError):
    """The audit log cannot be opened, written or read; ``reason`` is machine-readable.

    ``seq`` names the record the problem concerns and ``location`` the file and line
    (``segment-000001.jsonl:17``) when they are known.
    """

    reason = "audit_log"

    def __init__(
        self,
        detail: str,
        *,
        reason: str,
        seq: int | None = None,
        location: str | None = None,
    ) -> None:
        super().__init__(detail, reason=reason)
        self.seq = seq
        self.location = location
