"""Record encoding: the hash is the SHA-256 of the canonical JSON, and decoding is strict."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audit import AuditLogError
from audit.checkpoint import decode_checkpoint
from audit.record import GENESIS_HASH, canonical_json, decode_record, encode_record, record_hash
from schemas import AuditEvent

_printable = st.text(
    st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")),
    min_size=1,
    max_size=40,
)
_detail = st.text(
    st.characters(blacklist_categories=("Cs",)).filter(
        lambda c: c in "\t\n" or not (c < " " or "\x7f" <= c <= "\x9f")
    ),
    max_size=200,
)


@st.composite
def events(draw: st.DrawFn) -> AuditEvent:
    return AuditEvent(
        event_id=uuid.UUID(int=draw(st.integers(0, 2**128 - 1))).hex,
        ts=datetime.now(UTC),
        type=draw(st.sampled_from(["job.submitted", "envelope.rejected", "key.rotated.audit"])),
        actor=draw(st.none() | _printable),
        subject=draw(st.none() | _printable),
        action=draw(_printable),
        outcome=draw(st.sampled_from(["success", "failure", "rejected", "denied"])),
        reason=draw(st.none() | st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True)),
        source="worker",
        detail=draw(st.none() | _detail),
    )


@given(event=events(), seq=st.integers(1, 2**53), prev=st.sampled_from([GENESIS_HASH, "ab" * 32]))
def test_hash_is_sha256_of_canonical_json_and_decoding_round_trips(event, seq, prev):
    record, line = encode_record(seq, datetime.now(UTC), event, prev)
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    stored = json.loads(line)
    content = {k: stored[k] for k in ("seq", "ts", "event", "prev")}
    expected = hashlib.sha256(
        json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()
    assert record.hash == stored["hash"] == expected
    assert record_hash(seq, stored["ts"], stored["event"], prev) == expected
    decoded = decode_record(line[:-1])
    assert decoded.computed_hash == expected
    assert decoded.record == record


def _reason_of(decode, data: bytes) -> str | None:
    try:
        decode(data)
    except AuditLogError as exc:
        return exc.reason
    return None


@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_decoding_arbitrary_bytes_fails_only_with_malformed_record(data):
    assert _reason_of(decode_record, data) in {None, "malformed_record"}


@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_decoding_arbitrary_checkpoint_bytes_fails_only_with_malformed_checkpoint(data):
    assert _reason_of(decode_checkpoint, data) in {None, "malformed_checkpoint"}


@pytest.mark.parametrize(
    ("mutation", "fragment"),
    [
        (lambda r: {**r, "extra": 1}, "exactly"),
        (lambda r: {**r, "seq": True}, "seq"),
        (lambda r: {**r, "seq": 0}, "seq"),
        (lambda r: {**r, "ts": "2025-01-01T00:00:00"}, "ts"),
        (lambda r: {**r, "prev": "AB" * 32}, "prev"),
        (lambda r: {**r, "event": {**r["event"], "outcome": "maybe"}}, "outcome"),
        (lambda r: {**r, "event": {**r["event"], "detail": "\x1b[31mred"}}, "detail"),
    ],
)
def test_decoding_rejects_records_that_are_not_exactly_right(mutation, fragment):
    event = AuditEvent(
        event_id=uuid.uuid4().hex,
        ts=datetime.now(UTC),
        type="job.submitted",
        action="submit",
        outcome="success",
        source="gateway",
    )
    _record, line = encode_record(1, datetime.now(UTC), event, GENESIS_HASH)
    with pytest.raises(AuditLogError) as caught:
        decode_record(canonical_json(mutation(json.loads(line))))
    assert caught.value.reason == "malformed_record"
    assert fragment in str(caught.value)


def test_nan_and_oversized_lines_are_malformed():
    with pytest.raises(AuditLogError, match="not valid JSON"):
        decode_record(b'{"seq": NaN}')
    with pytest.raises(AuditLogError, match="longer than"):
        decode_record(b" " * (64 * 1024 + 1))


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)


@given(
    st.fixed_dictionaries(
        {
            "seq": st.integers(-2, 5) | _json_values,
            "ts": st.just("2025-01-01T00:00:00+00:00") | _json_values,
            "event": st.fixed_dictionaries({"event_id": st.just("0" * 32), "outcome": _json_values})
            | _json_values,
            "prev": st.just(GENESIS_HASH) | _json_values,
            "hash": st.just("f" * 64) | _json_values,
        }
    )
)
def test_decoding_wrongly_typed_records_fails_only_with_malformed_record(raw):
    assert _reason_of(decode_record, json.dumps(raw).encode()) == "malformed_record"
