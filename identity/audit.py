"""The identity's audit trail: events queued without blocking a sign-in, then sent to a sink.

Sign-ins must keep working when the broker is down, so handlers never wait on the broker: an
event goes into a bounded queue and one task hands it to the :class:`broker.AuditSink`. A
failed or dropped publish is logged at error level with the whole event (so it can still be
recovered from the logs) and counted in ``sealflow_identity_audit_failures_total``.
"""

from __future__ import annotations

import asyncio
import re
from typing import Final

import structlog
from prometheus_client import Counter
from pydantic import ValidationError

from broker import AuditSink, make_audit_event
from identity.outbox import Outbox
from schemas import AuditEvent

__all__ = ["AUDIT_FAILURES", "AUDIT_SENT", "AuditTrail", "LogAuditSink", "audit_name"]

_log = structlog.get_logger("sealflow.identity.audit")

AUDIT_SENT: Final = Counter(
    "sealflow_identity_audit_events_total", "Audit events the identity handed to its sink."
)
AUDIT_FAILURES: Final = Counter(
    "sealflow_identity_audit_failures_total",
    "Audit events the identity could not deliver, by reason (publish_failed, queue_full, invalid).",
    ["reason"],
)
_PRINTABLE: Final = re.compile(r"[\x20-\x7e\u00a0-\uffff]{1,255}")


def audit_name(value: str | None) -> str | None:
    """``value`` when it is usable as an audit ``actor``/``subject`` (1..255 printable), else None.

    Typed-in usernames of failed sign-ins are attacker-controlled; anything odd is left out
    rather than making the event invalid.
    """
    if value is None or not _PRINTABLE.fullmatch(value):
        return None
    return value


class LogAuditSink:
    """A sink that only logs: for running the provider without a broker (tests, tools)."""

    async def emit(self, event: AuditEvent) -> None:
        """Log the event as one structured line."""
        _log.info("audit.event", **event.model_dump(mode="json", exclude_none=True))


class AuditTrail(Outbox[AuditEvent]):
    """Queues audit events for ``sink``; :meth:`start` the sender, :meth:`close` to drain."""

    def __init__(self, sink: AuditSink, *, max_queued: int = 10_000) -> None:
        super().__init__(name="identity-audit", max_queued=max_queued)
        self.sink = sink

    def record(
        self,
        *,
        type: str,
        action: str,
        outcome: str,
        actor: str | None = None,
        subject: str | None = None,
        reason: str | None = None,
        jti: str | None = None,
        detail: str | None = None,
    ) -> None:
        """Queue one event (never blocks, never raises)."""
        try:
            event = make_audit_event(
                source="identity",
                type=type,
                action=action,
                outcome=outcome,
                actor=audit_name(actor),
                subject=audit_name(subject),
                reason=reason,
                jti=jti,
                detail=detail,
            )
        except ValidationError as error:
            AUDIT_FAILURES.labels("invalid").inc()
            _log.error("audit.event_invalid", type=type, action=action, error=str(error))
            return
        if not self._put(event):
            AUDIT_FAILURES.labels("queue_full").inc()
            _log.error("audit.queue_full", **event.model_dump(mode="json", exclude_none=True))

    def _unsent(self, count: int) -> None:
        AUDIT_FAILURES.labels("publish_failed").inc(count)
        _log.error("audit.unsent_at_shutdown", count=count)

    async def _deliver(self, event: AuditEvent) -> None:
        try:
            await self.sink.emit(event)
            AUDIT_SENT.inc()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - any sink failure is logged and counted
            AUDIT_FAILURES.labels("publish_failed").inc()
            _log.error(
                "audit.publish_failed",
                error=f"{type(error).__name__}: {error}",
                **event.model_dump(mode="json", exclude_none=True),
            )
