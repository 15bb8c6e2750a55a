"""Which wire model a message type (routing key, envelope ``typ``) carries."""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from schemas.audit import AUDIT_ROUTING_PREFIX, AuditEvent
from schemas.base import WireMessage
from schemas.control import KeySetChanged, Revocation
from schemas.errors import UnknownMessageType
from schemas.jobs import JobCompleted, JobFailed, JobProgress, JobSubmitted
from schemas.parsing import ParseCompleted, ParseFailed, ParseRequested

__all__ = ["MESSAGE_MODELS", "model_for"]

MESSAGE_MODELS: Final[Mapping[str, type[WireMessage]]] = MappingProxyType(
    {
        model.MESSAGE_TYPE: model
        for model in (
            JobSubmitted,
            ParseRequested,
            ParseCompleted,
            ParseFailed,
            JobProgress,
            JobCompleted,
            JobFailed,
            AuditEvent,
            Revocation,
            KeySetChanged,
        )
    }
)
"""Every broker message model by its message type; audit events are under ``audit.event``."""

# audit.<AuditType>: the same shape as a MessageType whose first segment is "audit".
_AUDIT_KEY: Final = re.compile(r"audit(?:\.[a-z][a-z0-9_]*){1,3}")
_MAX_TYPE_LENGTH: Final = 64


def model_for(message_type: str) -> type[WireMessage]:
    """The model for ``message_type``; any valid ``audit.<type>`` key gives ``AuditEvent``.

    Raises ``UnknownMessageType`` (reason ``unknown_type``) for anything else.
    """
    model = MESSAGE_MODELS.get(message_type)
    if model is not None:
        return model
    if (
        message_type.startswith(AUDIT_ROUTING_PREFIX)
        and len(message_type) <= _MAX_TYPE_LENGTH
        and _AUDIT_KEY.fullmatch(message_type) is not None
    ):
        return AuditEvent
    shown = message_type if len(message_type) <= _MAX_TYPE_LENGTH else message_type[:61] + "..."
    raise UnknownMessageType(f"no schema for message type {shown!r}")
