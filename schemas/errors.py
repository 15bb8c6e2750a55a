"""The one exception root of Sealflow, and the errors raised by the schemas package.

Every package's errors derive from :class:`SealflowError` (dependency order: schemas ← keys ←
broker, store ← daemons ← sealflow), so an entry point catches one class and prints one line.
"""

from __future__ import annotations

from typing import ClassVar

from schemas.limits import MAX_DETAIL_CHARS

__all__ = ["SchemaError", "SchemaExportError", "SealflowError", "UnknownMessageType"]


def _one_line(text: str, limit: int = MAX_DETAIL_CHARS) -> str:
    """``text`` with its whitespace runs folded to single spaces, cut to ``limit`` characters."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    return flat[: limit - 1] + "…"


class SealflowError(Exception):
    """Root of every Sealflow error: a snake_case ``reason`` code and a bounded one-line ``detail``.

    Each concern subclasses it with its own default ``reason`` (a class attribute) and its own
    reason codes; ``str()`` is the detail unless a subclass says otherwise.
    """

    reason: str = "sealflow_error"
    max_detail_chars: ClassVar[int] = MAX_DETAIL_CHARS

    def __init__(self, detail: str, *, reason: str | None = None) -> None:
        if reason is not None:
            self.reason = reason
        self.detail: str = _one_line(detail, self.max_detail_chars)
        super().__init__(self.detail)

    def __str__(self) -> str:
        return self.detail


class SchemaError(SealflowError):
    """Base of every schemas error."""

    reason = "schema_error"


class UnknownMessageType(SchemaError):
    """No wire model is registered for a message type (routing key / envelope ``typ``)."""

    reason = "unknown_type"


class SchemaExportError(SchemaError):
    """The JSON Schema files could not be written."""

    reason = "export_failed"
