"""Audit events from every part (DESIGN §2 step 5): built here, sealed for ``audit``, published."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime
from typing import Protocol

from broker.publisher import Publisher
from schemas import AuditEvent

__all__ = ["AuditSink", "BrokerAuditSink", "derived_event_id", "make_audit_event"]


class AuditSink(Protocol):
    """Somewhere audit events go; ``emit`` returns once the event is durable or confirmed."""

    async def emit(self, event: AuditEvent) -> None: ...


def derived_event_id(*parts: str) -> str:
    """An event id fixed by what the event is about (e.g. source, type, jti).

    A handler that runs again for the same delivery (a redelivery after a crash) then emits
    the same id, and the audit log, which deduplicates by id, records the decision once.
    """
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]


def make_audit_event(
    *,
    source: str,
    type: str,
    action: str,
    outcome: str,
    actor: str | None = None,
    subject: str | None = None,
    reason: str | None = None,
    job: str | None = None,
    trace: str | None = None,
    jti: str | None = None,
    detail: str | None = None,
    event_id: str | None = None,
) -> AuditEvent:
    """A new audit event with a fresh id (the audit log's deduplication key) and timestamp.

    Pass ``event_id`` (see :func:`derived_event_id`) when a retry must not record it twice.
    """
    return AuditEvent.model_validate(
        {
            "event_id": event_id if event_id is not None else secrets.token_hex(16),
            "ts": datetime.now(UTC),
            "type": type,
            "actor": actor,
            "subject": subject,
            "action": action,
            "outcome": outcome,
            "reason": reason,
            "job": job,
            "trace": trace,
            "source": source,
            "jti": jti,
            "detail": detail[:1000] if detail is not None else None,
        },
        strict=False,
    )


class BrokerAuditSink:
    """Publishes audit events sealed for ``audit`` on ``sealflow.audit`` (``audit.<type>``)."""

    def __init__(self, publisher: Publisher) -> None:
        self.publisher = publisher

    async def emit(self, event: AuditEvent) -> None:
        """Seal and publish; raises ``PublishFailed`` if the broker does not confirm."""
        await self.publisher.send(
            event,
            typ=f"audit.{event.type}",
            aud="audit",
            # The emitting service speaks for itself: the user an event is about is in the
            # event, not in ``sub``, so revoking that user never silences the audit of what
            # was refused in their name.
            sub=event.source,
            job=event.job,
            trace=event.trace,
        )
