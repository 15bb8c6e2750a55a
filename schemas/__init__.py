"""Pydantic v2 models for everything that crosses a process boundary (DESIGN §1, §3, §4, §7).

Strict, closed, frozen wire models; the registry of message types; JSON Schema export.
No I/O except ``export_json_schemas``.
"""

from __future__ import annotations

from schemas.audit import AUDIT_ROUTING_PREFIX, AuditEvent, AuditOutcome
from schemas.base import SchemaVersion, WireMessage, WireModel
from schemas.control import KeySetChanged, Revocation, RevocationKind
from schemas.envelope import Actor, EnvelopeClaims, EpochSeconds
from schemas.errors import SchemaError, SchemaExportError, UnknownMessageType
from schemas.export import SCHEMA_MODELS, export_json_schemas, schema_documents
from schemas.identifiers import (
    AuditType,
    BodyDigest,
    ContentType,
    EventId,
    JobId,
    Jti,
    KeyId,
    MessageType,
    ParserName,
    ReasonCode,
    SafeFilename,
    Scope,
    Sha256Hex,
    Subject,
    TraceId,
)
from schemas.jobs import JobCompleted, JobFailed, JobProgress, JobState, JobSubmitted
from schemas.limits import (
    MAX_ACTOR_DEPTH,
    MAX_BLOB_BYTES,
    MAX_CHUNKS,
    MAX_DETAIL_CHARS,
    MAX_DURATION_MS,
    MAX_EPOCH_SECONDS,
    MAX_KIDS,
    MAX_METADATA_KEYS,
    MAX_METADATA_VALUE_CHARS,
    MAX_PAGES,
    MAX_TEXT_CHARS,
    BlobSize,
    PageCount,
)
from schemas.parsing import (
    Chunk,
    Metadata,
    MetadataValue,
    ParseCompleted,
    ParseFailed,
    ParseFailureReason,
    ParseRequested,
)
from schemas.registry import MESSAGE_MODELS, model_for
from schemas.services import SERVICES, Service
from schemas.text import Detail, Label, ShortText

__all__ = [
    "AUDIT_ROUTING_PREFIX",
    "MAX_ACTOR_DEPTH",
    "MAX_BLOB_BYTES",
    "MAX_CHUNKS",
    "MAX_DETAIL_CHARS",
    "MAX_DURATION_MS",
    "MAX_EPOCH_SECONDS",
    "MAX_KIDS",
    "MAX_METADATA_KEYS",
    "MAX_METADATA_VALUE_CHARS",
    "MAX_PAGES",
    "MAX_TEXT_CHARS",
    "MESSAGE_MODELS",
    "SCHEMA_MODELS",
    "SERVICES",
    "Actor",
    "AuditEvent",
    "AuditOutcome",
    "AuditType",
    "BlobSize",
    "BodyDigest",
    "Chunk",
    "ContentType",
    "Detail",
    "EnvelopeClaims",
    "EpochSeconds",
    "EventId",
    "JobCompleted",
    "JobFailed",
    "JobId",
    "JobProgress",
    "JobState",
    "JobSubmitted",
    "Jti",
    "KeyId",
    "KeySetChanged",
    "Label",
    "MessageType",
    "Metadata",
    "MetadataValue",
    "PageCount",
    "ParseCompleted",
    "ParseFailed",
    "ParseFailureReason",
    "ParseRequested",
    "ParserName",
    "ReasonCode",
    "Revocation",
    "RevocationKind",
    "SafeFilename",
    "SchemaError",
    "SchemaExportError",
    "SchemaVersion",
    "Scope",
    "Service",
    "Sha256Hex",
    "ShortText",
    "Subject",
    "TraceId",
    "UnknownMessageType",
    "WireMessage",
    "WireModel",
    "export_json_schemas",
    "model_for",
    "schema_documents",
]
