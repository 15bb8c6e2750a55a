"""Audit events: one model for every decision any service records (DESIGN §7)."""

from __future__ import annotations

from typing import ClassVar, Final, Literal

from pydantic import AwareDatetime

from schemas.base import WireMessage
from schemas.identifiers import AuditType, EventId, JobId, Jti, ReasonCode, Subject, TraceId
from schemas.services import Service
from schemas.text import Detail, Label

__all__ = ["AUDIT_ROUTING_PREFIX", "AuditEvent", "AuditOutcome"]

AUDIT_ROUTING_PREFIX: Final = "audit."
"""Audit events travel on ``sealflow.audit`` with routing key ``audit.<type>``."""

AuditOutcome = Literal["success", "failure", "rejected", "denied"]
"""How the decision went: done, failed, an envelope/input rejected, or permission denied."""


class AuditEvent(WireMessage):
    """A decision recorded by a service: who did what, for whom, and how it went.

    Published with routing key ``audit.<type>`` (see ``routing_key``); every such key maps to
    this model. ``event_id`` is unique per event so the audit sink can drop duplicates.
    """

    MESSAGE_TYPE: ClassVar[str] = "audit.event"

    event_id: EventId
    ts: AwareDatetime
    type: AuditType
    """What happened, e.g. ``envelope.rejected`` or ``job.submitted``."""
    actor: Subject | None = None
    """Who acted: a user or a service."""
    subject: Subject | None = None
    """On whose behalf."""
    action: Label
    outcome: AuditOutcome
    reason: ReasonCode | None = None
    job: JobId | None = None
    trace: TraceId | None = None
    source: Service
    """The service that emitted the event."""
    jti: Jti | None = None
    """The envelope this event is about."""
    detail: Detail | None = None

    @property
    def routing_key(self) -> str:
        """The routing key to publish this event under: ``audit.<type>``."""
        return AUDIT_ROUTING_PREFIX + self.type
