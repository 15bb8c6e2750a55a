"""The admin API bodies (``/api/audit``, ``/api/dlq``): HTTP answers, not broker messages."""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, Field

from schemas.api import ApiModel
from schemas.audit import AuditEvent

__all__ = [
    "AuditRecordList",
    "AuditRecordView",
    "DeadLetterList",
    "DeadLetterView",
    "ReplayAccepted",
]

Count = Annotated[int, Field(ge=0)]


class AuditRecordView(ApiModel):
    """One record of the hash-chained audit log (DESIGN §7)."""

    seq: Annotated[int, Field(ge=1)]
    ts: AwareDatetime
    """When the audit service wrote it (its own clock)."""
    event: AuditEvent
    prev: str
    """The ``hash`` of the record before (64 zeros for the first)."""
    hash: str


class AuditRecordList(ApiModel):
    """``GET /api/audit``: the last ``limit`` matching records, oldest first."""

    records: list[AuditRecordView]


class DeadLetterView(ApiModel):
    """A message in a ``<queue>.dlq``, as the rejecting service and the broker left it.

    ``iss``, ``sub`` and ``jti`` are read from the envelope; they are only vouched for when
    ``verified`` is true (the signature verifies against the trust store).
    """

    id: str
    """This letter's own id (a message and each of its copies has one); replay by this id."""
    queue: str
    """The queue it was dead-lettered from, e.g. ``worker.jobs``."""
    type: str | None = None
    """The AMQP ``type`` (the message type)."""
    reason: str
    """``x-sealflow-reject-reason``, else the broker's (``expired``, ``maxlen``, ...)."""
    detail: str | None = None
    rejected_by: str | None = None
    rejected_at: str | None = None
    job: str | None = None
    iss: str | None = None
    sub: str | None = None
    jti: str | None = None
    verified: bool
    """The envelope's signature verifies against the trust store (expiry aside)."""
    replayable: bool
    """Every check of ``POST .../replay`` passes now: verified, a type the gateway may send by
    policy, not a copy refused as ``replay``, a body that agrees with its envelope, and a job
    still waiting."""
    refusal: str | None = None
    """Why it cannot be replayed, when ``replayable`` is false."""
    size: Count
    """Bytes of the message body."""
    deaths: Count
    """Times the broker dead-lettered or expired it (``x-death`` counts)."""
    deliveries: Count
    """Times it was delivered from its DLQ (each listing is one)."""
    attempt: Annotated[int, Field(ge=1)]
    """Handling attempts before it was dead-lettered."""


class DeadLetterList(ApiModel):
    """``GET /api/dlq``: dead letters, DLQ by DLQ, oldest first, none consumed."""

    messages: list[DeadLetterView]
    truncated: bool
    """More were waiting past ``limit`` (or past the bytes one listing may hold)."""


class ReplayAccepted(ApiModel):
    """``POST /api/dlq/{id}/replay`` (202): re-sealed, published, and removed from its DLQ."""

    id: str
    """The dead letter's id."""
    jti: str
    """The fresh envelope's id."""
    queue: str
    type: str
    job: str | None = None
