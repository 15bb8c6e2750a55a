"""An in-memory audit sink for tests: what a consumer or runtime audited, in order."""

from __future__ import annotations

from schemas import AuditEvent

__all__ = ["RecordingAuditSink"]


class RecordingAuditSink:
    """An ``AuditSink`` that keeps every event it is given (nothing is published)."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    async def emit(self, event: AuditEvent) -> None:
        """Keep the event."""
        self.events.append(event)
