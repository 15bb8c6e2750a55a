"""verify_log: an intact log passes; every kind of tampering is caught and named by its seq."""

from __future__ import annotations

import base64
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import keys
from audit import AuditLog, verify_log
from audit.record import canonical_json
from audit.segments import CHECKPOINTS_FILE, list_segments


@pytest.fixture
def written(log_dir, make_event, signer):
    """25 records, checkpoints at 10, 20 and (on close) 25."""
    with AuditLog.open(log_dir, signer=signer, checkpoint_every=10) as log:
        for _ in range(25):
            log.append([make_event()])
    return log_dir


def _forged_checkpoint(checkpoint: dict, signing_key: keys.SigningKey, *, kid: str) -> dict:
    fields = {
        **{k: checkpoint[k] for k in ("seq", "hash", "ts", "prev")},
        "kid": kid,
        "alg": signing_key.alg,
    }
    signature = keys.sign(signing_key, canonical_json(fields))
    return {**fields, "sig": base64.urlsafe_b64encode(signature).rstrip(b"=").decode()}


def test_intact_log_verifies(written, trust):
    report = verify_log(written, trust)
    assert report.ok
    assert (report.records, report.checkpoints) == (25, 3)
    assert report.first_bad_seq is None
    assert report.reason is None


def test_missing_directory_is_an_empty_intact_log(tmp_path, trust):
    report = verify_log(tmp_path / "nowhere", trust)
    assert report.ok
    assert report.records == 0
    assert "empty" in report.detail


def test_edited_field_is_a_hash_mismatch_at_its_seq(written, trust, files):
    records = files.records()
    records[6]["event"]["outcome"] = "denied"
    files.write_records(records)
    report = verify_log(written, trust)
    assert not report.ok
    assert (report.reason, report.first_bad_seq) == ("hash_mismatch", 7)
    assert report.location == "segment-000001.jsonl:7"
    assert report.records == 6


def test_deleted_record_is_a_seq_gap_at_the_missing_seq(written, trust, files):
    records = files.records()
    del records[6]
    files.write_records(records)
    report = verify_log(written, trust)
    assert (report.ok, report.reason, report.first_bad_seq) == (False, "seq_gap", 7)
    assert report.location == "segment-000001.jsonl:7"


def test_swapped_records_are_out_of_order_at_the_first_seq(written, trust, files):
    records = files.records()
    records[6], records[7] = records[7], records[6]
    files.write_records(records)
    report = verify_log(written, trust)
    assert (report.ok, report.reason, report.first_bad_seq) == (False, "seq_order", 7)


def test_recomputed_hash_with_broken_prev_is_a_prev_mismatch(written, trust, files):
    records = files.records()
    records[6] = files.rehash({**records[6], "prev": "ab" * 32})
    files.write_records(records)
    report = verify_log(written, trust)
    assert (report.ok, report.reason, report.first_bad_seq) == (False, "prev_mismatch", 7)


def test_rewritten_chain_is_caught_by_the_next_checkpoint(written, trust, files):
    records = files.records()
    records[4]["event"]["actor"] = "mallory"
    prev = records[3]["hash"]
    for index in range(4, len(records)):  # a consistent new chain from record 5 on
        records[index] = files.rehash({**records[index], "prev": prev})
        prev = records[index]["hash"]
    files.write_records(records)
    report = verify_log(written, trust)
    assert (report.ok, report.reason, report.first_bad_seq) == (False, "checkpoint_mismatch", 10)
    assert report.location == f"{CHECKPOINTS_FILE}:1"


def test_records_removed_after_a_checkpoint_are_detected(written, trust, files):
    files.write_records(files.records()[:20])  # the checkpoint at 25 is now beyond the log
    report = verify_log(written, trust)
    assert (report.ok, report.reason, report.first_bad_seq) == (False, "checkpoint_beyond_log", 21)
    assert report.records == 20
    assert report.checkpoints == 2


def test_forged_checkpoint_signature_is_detected(written, trust, files, signer, tmp_path):
    attacker = keys.KeyRing.create(tmp_path / "attacker", "audit").signing_key()
    checkpoints = files.checkpoints()
    checkpoints[1] = _forged_checkpoint(checkpoints[1], attacker, kid=signer.kid)
    files.write_checkpoints(checkpoints)
    report = verify_log(written, trust)
    assert (report.ok, report.reason, report.first_bad_seq) == (False, "checkpoint_signature", 20)
    assert report.location == f"{CHECKPOINTS_FILE}:2"


def test_tampered_signature_bytes_are_detected(written, trust, files):
    checkpoints = files.checkpoints()
    sig = checkpoints[0]["sig"]
    checkpoints[0]["sig"] = ("A" if sig[0] != "A" else "B") + sig[1:]
    files.write_checkpoints(checkpoints)
    report = verify_log(written, trust)
    assert (report.reason, report.first_bad_seq) == ("checkpoint_signature", 10)


def test_checkpoint_with_an_unknown_kid_is_detected(written, trust, files, tmp_path):
    attacker = keys.KeyRing.create(tmp_path / "attacker", "audit").signing_key()
    checkpoints = files.checkpoints()
    checkpoints[0] = _forged_checkpoint(checkpoints[0], attacker, kid=attacker.kid)
    files.write_checkpoints(checkpoints)
    report = verify_log(written, trust)
    assert (report.ok, report.reason, report.first_bad_seq) == (False, "checkpoint_unknown_kid", 10)


def test_checkpoint_signed_by_another_service_is_an_unknown_audit_kid(
    written, files, keys_dir, ring
):
    gateway = keys.KeyRing.create(keys_dir, "gateway").signing_key()
    trust = keys.TrustStore.from_rings(keys_dir, ("audit", "gateway"))
    checkpoints = files.checkpoints()
    checkpoints[0] = _forged_checkpoint(checkpoints[0], gateway, kid=gateway.kid)
    files.write_checkpoints(checkpoints)
    report = verify_log(written, trust)
    assert (report.reason, report.first_bad_seq) == ("checkpoint_unknown_kid", 10)
    assert "gateway" in report.detail


def test_malformed_record_is_named(written, trust, files):
    segment = files.segment()
    lines = segment.read_text().splitlines()
    lines[2] = '{"seq": 3, "oops": true}'
    segment.write_text("\n".join(lines) + "\n")
    report = verify_log(written, trust)
    assert (report.reason, report.first_bad_seq) == ("malformed_record", 3)
    assert report.location == "segment-000001.jsonl:3"


def test_torn_tail_is_reported(written, trust, files):
    with files.segment().open("ab") as file:
        file.write(b'{"seq":26')
    report = verify_log(written, trust)
    assert (report.ok, report.reason, report.first_bad_seq) == (False, "torn_tail", 26)


def test_verify_spans_segments(log_dir, make_event, signer, trust, files):
    with AuditLog.open(log_dir, signer=signer, checkpoint_every=4, segment_max_records=5) as log:
        for _ in range(17):
            log.append([make_event()])
    assert len(list_segments(log_dir)) == 4
    report = verify_log(log_dir, trust)
    assert (report.ok, report.records) == (True, 17)
    records = files.records(3)
    records[1]["event"]["detail"] = "edited"
    files.write_records(records, 3)
    report = verify_log(log_dir, trust)
    assert (report.reason, report.first_bad_seq) == ("hash_mismatch", 12)
    assert report.location == "segment-000003.jsonl:2"


def test_a_removed_middle_segment_is_a_seq_gap(log_dir, make_event, trust, files):
    with AuditLog.open(log_dir, signer=None, segment_max_records=5) as log:
        log.append([make_event() for _ in range(15)])
    files.segment(2).unlink()
    report = verify_log(log_dir, trust)
    assert (report.reason, report.first_bad_seq) == ("seq_gap", 6)
    assert report.location == "segment-000003.jsonl:1"


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_single_bit_flip_in_a_segment_is_detected(data, tmp_path, make_event, signer, trust):
    pristine = tmp_path / "pristine"
    if not pristine.exists():
        with AuditLog.open(pristine, signer=signer, checkpoint_every=3) as log:
            for _ in range(6):
                log.append([make_event()])
    target = tmp_path / "target"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(pristine, target)
    segment = target / "segment-000001.jsonl"
    raw = bytearray(segment.read_bytes())
    index = data.draw(st.integers(0, len(raw) - 1), label="byte")
    bit = data.draw(st.integers(0, 7), label="bit")
    raw[index] ^= 1 << bit
    segment.write_bytes(bytes(raw))
    report = verify_log(target, trust)
    assert not report.ok
    assert report.first_bad_seq is not None
    # the flipped byte lies in the named record or earlier (never a later one is blamed)
    lines_before = bytes(raw[:index]).count(b"\n")
    assert report.first_bad_seq <= lines_before + 1
