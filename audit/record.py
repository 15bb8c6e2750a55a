"""One audit record: its JSON Lines form, its hash, and strict decoding of untrusted lines.

A record line is ``{"seq", "ts", "event", "prev", "hash"}``; ``hash`` is the hex SHA-256 of
the canonical JSON of ``{seq, ts, event, prev}`` and ``prev`` is the previous record's
``hash`` (64 zeros for seq 1), which chains every record to all the ones before it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from pydantic import ValidationError

from audit.errors import AuditLogError
from schemas import AuditEvent

__all__ = [
    "GENESIS_HASH",
    "MAX_RECORD_BYTES",
    "AuditRecord",
    "DecodedRecord",
    "canonical_json",
    "decode_record",
    "encode_record",
    "event_to_json",
    "format_ts",
    "parse_ts",
    "record_hash",
]

GENESIS_HASH: Final = "0" * 64
"""The ``prev`` of record 1."""

MAX_RECORD_BYTES: Final = 64 * 1024
"""Longest record line accepted on read. An ``AuditEvent`` is bounded by its schema to a few
KiB, so anything longer is damage or tampering, not a record."""

_HEX64: Final = re.compile(r"[0-9a-f]{64}")
_RECORD_KEYS: Final = frozenset({"seq", "ts", "event", "prev", "hash"})
_MAX_TS_CHARS: Final = 64

# json.dumps/json.loads with non-default options build a new encoder/decoder on every call.
_CANONICAL: Final = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
_STRING: Final = json.JSONEncoder(ensure_ascii=False)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """A record of the log: its position, when it was written, the event and its chain links."""

    seq: int
    ts: datetime
    event: AuditEvent
    prev: str
    hash: str


@dataclass(frozen=True, slots=True)
class DecodedRecord:
    """A record read from disk together with the hash its content actually has."""

    record: AuditRecord
    computed_hash: str


def canonical_json(obj: object) -> bytes:
    """The canonical JSON the hashes and signatures are computed over (sorted keys, compact)."""
    return _CANONICAL.encode(obj).encode()


def format_ts(ts: datetime) -> str:
    """An aware datetime as the UTC ISO 8601 string records carry (microseconds, ``Z``)."""
    if ts.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return ts.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_ts(text: str) -> datetime:
    """Parse a record or checkpoint timestamp; it must be ISO 8601 with a UTC offset."""
    if len(text) > _MAX_TS_CHARS:
        raise ValueError("timestamp too long")
    ts = datetime.fromisoformat(text)
    if ts.tzinfo is None:
        raise ValueError("timestamp has no UTC offset")
    return ts


def event_to_json(event: AuditEvent) -> dict[str, Any]:
    """The JSON form of an event as stored in a record: fields that are ``None`` are omitted."""
    return {k: v for k, v in event.model_dump(mode="json").items() if v is not None}


def _hash_input(seq: int, ts: str, event_json: bytes, prev: str) -> bytes:
    # Byte-for-byte what canonical_json({"seq", "ts", "event", "prev"}) gives (keys sorted),
    # assembled so that the event's canonical JSON is serialized only once.
    return b"".join(
        (
            b'{"event":',
            event_json,
            b',"prev":',
            _STRING.encode(prev).encode(),
            b',"seq":',
            str(seq).encode(),
            b',"ts":',
            _STRING.encode(ts).encode(),
            b"}",
        )
    )


def record_hash(seq: int, ts: str, event: dict[str, Any], prev: str) -> str:
    """The hash of a record: hex SHA-256 of the canonical JSON of ``{seq, ts, event, prev}``."""
    return hashlib.sha256(_hash_input(seq, ts, canonical_json(event), prev)).hexdigest()


def encode_record(
    seq: int, ts: datetime, event: AuditEvent, prev: str
) -> tuple[AuditRecord, bytes]:
    """Build record ``seq`` after a record whose hash is ``prev``; returns it and its line."""
    ts_text = format_ts(ts)
    try:
        event_json = canonical_json(event_to_json(event))
    except (ValueError, UnicodeEncodeError) as exc:
        raise AuditLogError(
            f"event {event.event_id} cannot be serialized: {exc}", reason="unserialisable_event"
        ) from exc
    digest = hashlib.sha256(_hash_input(seq, ts_text, event_json, prev)).hexdigest()
    line = b"".join(
        (
            b'{"seq":',
            str(seq).encode(),
            b',"ts":',
            _STRING.encode(ts_text).encode(),
            b',"event":',
            event_json,
            b',"prev":"',
            prev.encode(),
            b'","hash":"',
            digest.encode(),
            b'"}\n',
        )
    )
    if len(line) > MAX_RECORD_BYTES:
        raise AuditLogError(
            f"event {event.event_id} is {len(line)} bytes as a record, over {MAX_RECORD_BYTES}",
            reason="record_too_large",
        )
    record = AuditRecord(seq=seq, ts=parse_ts(ts_text), event=event, prev=prev, hash=digest)
    return record, line


def _malformed(message: str) -> AuditLogError:
    return AuditLogError(message, reason="malformed_record")


def decode_record(line: bytes) -> DecodedRecord:
    """Decode one record line (without its newline); raises ``malformed_record`` on any flaw.

    The content hash is recomputed from the decoded values, so it does not depend on how the
    line was laid out; whether it matches the stored ``hash`` is left to the caller.
    """
    if len(line) > MAX_RECORD_BYTES:
        raise _malformed(f"record line is longer than {MAX_RECORD_BYTES} bytes")
    try:
        raw = _DECODER.decode(line.decode())
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise _malformed(f"record is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict) or raw.keys() != _RECORD_KEYS:
        raise _malformed("record must be an object with exactly seq, ts, event, prev, hash")
    seq, ts_text, event, prev, stored_hash = (
        raw["seq"],
        raw["ts"],
        raw["event"],
        raw["prev"],
        raw["hash"],
    )
    if type(seq) is not int or seq < 1:
        raise _malformed("record seq must be a positive integer")
    if not isinstance(ts_text, str):
        raise _malformed(f"record {seq}: ts must be a string")
    if not isinstance(event, dict):
        raise _malformed(f"record {seq}: event must be an object")
    for name, value in (("prev", prev), ("hash", stored_hash)):
        if not isinstance(value, str) or _HEX64.fullmatch(value) is None:
            raise _malformed(f"record {seq}: {name} must be 64 lowercase hex digits")
    try:
        ts = parse_ts(ts_text)
    except ValueError as exc:
        raise _malformed(f"record {seq}: bad ts: {exc}") from exc
    try:
        event_json = canonical_json(event)
    except (ValueError, UnicodeEncodeError) as exc:
        raise _malformed(f"record {seq}: event cannot be re-serialized: {exc}") from exc
    try:
        audit_event = AuditEvent.model_validate_json(event_json)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in err["loc"]) or "event" for err in exc.errors())
        raise _malformed(f"record {seq}: event is not a valid AuditEvent ({fields})") from exc
    computed = hashlib.sha256(_hash_input(seq, ts_text, event_json, prev)).hexdigest()
    record = AuditRecord(seq=seq, ts=ts, event=audit_event, prev=prev, hash=stored_hash)
    return DecodedRecord(record=record, computed_hash=computed)
