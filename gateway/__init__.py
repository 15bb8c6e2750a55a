"""The HTTP gateway: the REST API under ``/api`` (bearer tokens from the identity provider),
uploads that become sealed jobs, job status, live events, results and search (DESIGN §1, §2)."""

from __future__ import annotations

from gateway.app import all_operations, create_app
from gateway.appkeys import (
    AUDIT_KEY,
    AUTH_KEY,
    BLOB_KEEPER_KEY,
    BLOBS_KEY,
    BROKER_SETTINGS_KEY,
    HUB_KEY,
    ISSUER_KEY,
    PUBLISHER_KEY,
    RUNTIME_KEY,
    SETTINGS_KEY,
    STORE_KEY,
)
from gateway.auth import PRINCIPAL_KEY, Authenticator, Principal, bearer_token, require
from gateway.blobkeeper import BlobKeeper
from gateway.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    GatewayError,
    InsufficientScope,
    Internal,
    Invalid,
    InvalidUpload,
    MethodNotAllowed,
    NotFound,
    NotReady,
    RequestTimeout,
    TooLarge,
    TooManyRequests,
    Unauthorized,
    Unavailable,
    UnsupportedType,
    error_response,
)
from gateway.events import EVENTS_QUEUE, JobEventRelay
from gateway.filenames import safe_filename
from gateway.hub import EventHub, JobNotice, Stream
from gateway.issuer import IssuerError, IssuerKeys
from gateway.operations import Auth, Operation, Parameter
from gateway.settings import DEFAULT_CONTENT_TYPES, GatewaySettings

__all__ = [
    "AUDIT_KEY",
    "AUTH_KEY",
    "BLOBS_KEY",
    "BLOB_KEEPER_KEY",
    "BROKER_SETTINGS_KEY",
    "DEFAULT_CONTENT_TYPES",
    "EVENTS_QUEUE",
    "HUB_KEY",
    "ISSUER_KEY",
    "PRINCIPAL_KEY",
    "PUBLISHER_KEY",
    "RUNTIME_KEY",
    "SETTINGS_KEY",
    "STORE_KEY",
    "Auth",
    "Authenticator",
    "BadRequest",
    "BlobKeeper",
    "Conflict",
    "EventHub",
    "Forbidden",
    "GatewayError",
    "GatewaySettings",
    "InsufficientScope",
    "Internal",
    "Invalid",
    "InvalidUpload",
    "IssuerError",
    "IssuerKeys",
    "JobEventRelay",
    "JobNotice",
    "MethodNotAllowed",
    "NotFound",
    "NotReady",
    "Operation",
    "Parameter",
    "Principal",
    "RequestTimeout",
    "Stream",
    "TooLarge",
    "TooManyRequests",
    "Unauthorized",
    "Unavailable",
    "UnsupportedType",
    "all_operations",
    "bearer_token",
    "create_app",
    "error_response",
    "require",
    "safe_filename",
]
