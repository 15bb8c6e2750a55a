"""Constrained string types for identifiers, names and codes carried on the wire.

Every type is an ``Annotated[str, StringConstraints(...)]`` so pydantic-core checks it in Rust
(length first, then a linear-time regex) without calling back into Python. The patterns are
also valid ECMAScript (``u`` flag) so the exported JSON Schemas mean the same thing.
"""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import StringConstraints

__all__ = [
    "AuditType",
    "BodyDigest",
    "ContentType",
    "EventId",
    "JobId",
    "Jti",
    "KeyId",
    "MessageType",
    "ParserName",
    "ReasonCode",
    "SafeFilename",
    "Scope",
    "Sha256Hex",
    "Subject",
    "TraceId",
]

# A "printable" character: not a control, format, surrogate, private-use or unassigned code
# point (Unicode category C), and not a line or paragraph separator.
_PRINTABLE: Final = r"[^\p{C}\p{Zl}\p{Zp}]"
_PATH_SAFE: Final = r"[^/\\\p{C}\p{Zl}\p{Zp}]"
_PATH_SAFE_NOT_DOT: Final = r"[^/\\.\p{C}\p{Zl}\p{Zp}]"
_SEGMENT: Final = r"[a-z][a-z0-9_]*"
_SCOPE_WORD: Final = r"[A-Za-z0-9:._-]{1,64}"
_MEDIA_NAME: Final = r"[a-z0-9][a-z0-9!#$&^_.+-]*"

_HEX32: Final = StringConstraints(min_length=32, max_length=32, pattern=r"^[0-9a-f]{32}$")

JobId = Annotated[str, _HEX32]
"""A job id: 32 lowercase hex digits (``uuid4().hex``)."""

Jti = Annotated[str, _HEX32]
"""An envelope's unique id (the JWT ``jti``, also the AMQP ``message_id``): 32 lowercase hex."""

EventId = Annotated[str, _HEX32]
"""A unique id for an audit event or control message, used for deduplication: 32 lowercase hex."""

TraceId = Annotated[
    str, StringConstraints(min_length=32, max_length=32, pattern=r"^0*[1-9a-f][0-9a-f]*$")
]
"""A W3C trace id: 32 lowercase hex digits, not all zero."""

Sha256Hex = Annotated[
    str, StringConstraints(min_length=64, max_length=64, pattern=r"^[0-9a-f]{64}$")
]
"""A SHA-256 digest as 64 lowercase hex digits (blob addresses)."""

BodyDigest = Annotated[
    str, StringConstraints(min_length=51, max_length=51, pattern=r"^sha-256=[A-Za-z0-9_-]{43}$")
]
"""The envelope ``dig`` claim: ``sha-256=`` and the unpadded base64url SHA-256 of the body."""

Subject = Annotated[
    str, StringConstraints(min_length=1, max_length=255, pattern=rf"^{_PRINTABLE}+$")
]
"""A user, client or service name: 1..255 printable characters (no controls, no newlines)."""

Scope = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=1024, pattern=rf"^{_SCOPE_WORD}(?: {_SCOPE_WORD})*$"
    ),
]
"""OAuth-style scope: tokens of ``[A-Za-z0-9:._-]{1,64}`` separated by single spaces."""

MessageType = Annotated[
    str,
    StringConstraints(min_length=3, max_length=64, pattern=rf"^{_SEGMENT}(?:\.{_SEGMENT}){{1,3}}$"),
]
"""A message type / routing key: 2..4 dot-separated lowercase segments, e.g. ``job.submitted``."""

AuditType = Annotated[
    str,
    StringConstraints(min_length=1, max_length=58, pattern=rf"^{_SEGMENT}(?:\.{_SEGMENT}){{0,2}}$"),
]
"""An audit event type: 1..3 segments, so that ``audit.<type>`` is always a valid MessageType."""

SafeFilename = Annotated[
    str,
    StringConstraints(
        min_length=1,
        max_length=255,
        pattern=rf"^{_PATH_SAFE}*{_PATH_SAFE_NOT_DOT}{_PATH_SAFE}*$",
    ),
]
"""A bare file name: 1..255 printable characters, no ``/``, ``\\`` or NUL, not only dots
(so never ``.`` or ``..``)."""

ContentType = Annotated[
    str,
    StringConstraints(min_length=3, max_length=127, pattern=rf"^{_MEDIA_NAME}/{_MEDIA_NAME}$"),
]
"""A media type ``type/subtype`` in lowercase, without parameters (RFC 6838 names)."""

ReasonCode = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")
]
"""A machine-readable reason: a short snake_case code."""

KeyId = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")
]
"""A key id (``kid``), e.g. an RFC 7638 thumbprint in base64url."""

ParserName = Annotated[
    str, StringConstraints(min_length=1, max_length=32, pattern=r"^[a-z0-9][a-z0-9_.+-]*$")
]
"""The parser that produced a result, e.g. ``pdf`` or ``markdown``."""
