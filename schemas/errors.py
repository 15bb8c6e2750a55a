"""Errors raised by the schemas package, each with a machine-readable ``reason`` code."""

from __future__ import annotations

__all__ = ["SchemaError", "SchemaExportError", "UnknownMessageType"]


class SchemaError(Exception):
    """Base of every schemas error: a short snake_case ``reason`` plus a one-line message."""

    reason: str = "schema_error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason
        self.message = message


class UnknownMessageType(SchemaError):
    """No wire model is registered for a message type (routing key / envelope ``typ``)."""

    reason = "unknown_type"


class SchemaExportError(SchemaError):
    """The JSON Schema files could not be written."""

    reason = "export_failed"
