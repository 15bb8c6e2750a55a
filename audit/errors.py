"""The audit package's one error type: every failure carries a snake_case ``reason`` code."""

from __future__ import annotations

__all__ = ["AuditLogError"]


class AuditLogError(Exception):
    """The audit log cannot be opened, written or read; ``reason`` is machine-readable.

    ``seq`` names the record the problem concerns and ``location`` the file and line
    (``segment-000001.jsonl:17``) when they are known.
    """

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        seq: int | None = None,
        location: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.seq = seq
        self.location = location
