"""AuditLog: appending, reopening, deduplication, torn tails, checkpoints, segments, locking."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import types

import pytest
import structlog

import audit.log as log_module
import keys
from audit import AuditLog, AuditLogError, verify_log
from audit.checkpoint import decode_checkpoint
from audit.record import GENESIS_HASH, canonical_json
from audit.segments import CHECKPOINTS_FILE, list_segments


def test_first_record_links_to_genesis_and_hashes_its_canonical_content(log_dir, make_event):
    with AuditLog.open(log_dir, signer=None) as log:
        (record,) = log.append([make_event()])
    assert record.seq == 1
    assert record.prev == GENESIS_HASH
    line = json.loads((log_dir / "segment-000001.jsonl").read_text())
    assert set(line) == {"seq", "ts", "event", "prev", "hash"}
    content = {k: line[k] for k in ("seq", "ts", "event", "prev")}
    assert line["hash"] == record.hash
    assert hashlib.sha256(canonical_json(content)).hexdigest() == record.hash


def test_none_fields_are_omitted_from_the_stored_event(log_dir, make_event):
    with AuditLog.open(log_dir, signer=None) as log:
        log.append([make_event(job=None, actor=None)])
    event = json.loads((log_dir / "segment-000001.jsonl").read_text())["event"]
    assert "job" not in event
    assert "actor" not in event
    assert "reason" not in event


def test_append_after_reopen_continues_the_chain(log_dir, make_event, trust):
    with AuditLog.open(log_dir, signer=None) as log:
        first = log.append([make_event() for _ in range(3)])
    with AuditLog.open(log_dir, signer=None) as log:
        assert log.last_seq == 3
        assert log.last_hash == first[-1].hash
        more = log.append([make_event(), make_event()])
    assert [r.seq for r in first + more] == [1, 2, 3, 4, 5]
    assert more[0].prev == first[-1].hash
    assert more[1].prev == more[0].hash
    assert verify_log(log_dir, trust).ok


def test_duplicate_event_ids_are_skipped_across_reopen(log_dir, make_event):
    a, b, c = make_event(), make_event(), make_event()
    with AuditLog.open(log_dir, signer=None) as log:
        log.append([a, b])
    with AuditLog.open(log_dir, signer=None) as log:
        appended = log.append([a, c, b])
        assert [r.event.event_id for r in appended] == [c.event_id]
        assert log.last_seq == 3


def test_duplicates_within_one_batch_are_written_once(log_dir, make_event):
    event = make_event()
    with AuditLog.open(log_dir, signer=None) as log:
        appended = log.append([event, event, event])
    assert [r.seq for r in appended] == [1]


def test_dedup_remembers_only_the_last_dedup_window_records(log_dir, make_event):
    old = make_event()
    with AuditLog.open(log_dir, signer=None, dedup_window=2) as log:
        log.append([old, make_event()])
        assert log.append([old]) == []
        log.append([make_event(), make_event()])  # pushes `old` out of the window
        assert [r.event.event_id for r in log.append([old])] == [old.event_id]
    with AuditLog.open(log_dir, signer=None, dedup_window=2) as log:
        assert old.event_id in log  # the window rebuilt on open holds the last two records
        assert log.append([old]) == []


def test_torn_final_line_is_truncated_on_open_with_a_warning(log_dir, make_event, trust):
    with AuditLog.open(log_dir, signer=None) as log:
        log.append([make_event(), make_event()])
    segment = log_dir / "segment-000001.jsonl"
    intact = segment.read_bytes()
    with segment.open("ab") as file:
        file.write(b'{"seq":3,"ts":"2025-01-01T00:00:00.000000Z","event":{"act')
    assert verify_log(log_dir, trust).reason == "torn_tail"
    with structlog.testing.capture_logs() as logs:
        log = AuditLog.open(log_dir, signer=None)
    with log:
        assert segment.read_bytes() == intact
        assert log.last_seq == 2
        (record,) = log.append([make_event()])
        assert record.seq == 3
    assert [entry["event"] for entry in logs] == ["audit_torn_tail_truncated"]
    assert logs[0]["log_level"] == "warning"
    assert logs[0]["location"] == "segment-000001.jsonl:3"
    assert verify_log(log_dir, trust).ok


def test_torn_checkpoint_line_is_truncated_on_open(log_dir, make_event, signer, trust):
    with AuditLog.open(log_dir, signer=signer) as log:
        log.append([make_event()])
    checkpoints = log_dir / CHECKPOINTS_FILE
    with checkpoints.open("ab") as file:
        file.write(b'{"seq":2,"hash":"ab')
    with AuditLog.open(log_dir, signer=signer) as log:
        log.append([make_event()])
    report = verify_log(log_dir, trust)
    assert report.ok
    assert report.checkpoints == 2


def test_checkpoint_every_n_records_with_valid_signatures(log_dir, make_event, signer, trust):
    with AuditLog.open(log_dir, signer=signer, checkpoint_every=5) as log:
        for _ in range(12):
            log.append([make_event()])
        lines = (log_dir / CHECKPOINTS_FILE).read_bytes().splitlines()
        assert [json.loads(line)["seq"] for line in lines] == [5, 10]
    lines = (log_dir / CHECKPOINTS_FILE).read_bytes().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [5, 10, 12]  # final one on close
    key = trust.lookup(signer.kid)
    assert key is not None
    previous = "0" * 64
    for line in lines:
        decoded = decode_checkpoint(line)
        cp = decoded.checkpoint
        assert (cp.kid, cp.alg) == (signer.kid, signer.alg)
        assert cp.prev == previous  # each checkpoint names the one before it
        previous = cp.digest
        signature = base64.urlsafe_b64decode(cp.sig + "=" * (-len(cp.sig) % 4))
        expected_input = canonical_json(
            {
                "seq": cp.seq,
                "hash": cp.hash,
                "ts": json.loads(line)["ts"],
                "kid": cp.kid,
                "alg": cp.alg,
                "prev": cp.prev,
            }
        )
        assert decoded.signing_input == expected_input
        assert keys.verify(key, expected_input, signature)
    report = verify_log(log_dir, trust)
    assert (report.ok, report.records, report.checkpoints) == (True, 12, 3)


def test_checkpoint_signs_the_hash_of_the_last_record(log_dir, make_event, signer):
    with AuditLog.open(log_dir, signer=signer) as log:
        records = log.append([make_event(), make_event()])
        checkpoint = log.checkpoint()
        assert checkpoint is not None
        assert (checkpoint.seq, checkpoint.hash) == (2, records[-1].hash)
        assert log.checkpoint() is None  # nothing new since


def test_close_without_new_records_writes_no_checkpoint(log_dir, make_event, signer):
    with AuditLog.open(log_dir, signer=signer) as log:
        log.append([make_event()])
    with AuditLog.open(log_dir, signer=signer):
        pass
    assert len((log_dir / CHECKPOINTS_FILE).read_text().splitlines()) == 1


def test_checkpoint_when_interval_has_passed(log_dir, make_event, signer, monkeypatch):
    clock = [1000.0]
    fake_time = types.SimpleNamespace(monotonic=lambda: clock[0])
    monkeypatch.setattr(log_module, "time", fake_time)
    with AuditLog.open(log_dir, signer=signer, checkpoint_interval=60.0) as log:
        log.append([make_event()])
        assert log.checkpoint_if_due() is None
        clock[0] += 61
        checkpoint = log.checkpoint_if_due()
        assert checkpoint is not None
        assert checkpoint.seq == 1
        clock[0] += 61
        assert log.checkpoint_if_due() is None  # no new records
        log.append([make_event()])  # due by time: append writes it
        assert (log_dir / CHECKPOINTS_FILE).read_text().count("\n") == 2


def test_without_a_signer_no_checkpoints_are_written(log_dir, make_event):
    with AuditLog.open(log_dir, signer=None, checkpoint_every=1) as log:
        log.append([make_event(), make_event()])
        assert log.checkpoint() is None
    assert not (log_dir / CHECKPOINTS_FILE).exists()


def test_segments_roll_over_and_reopen_fills_the_last_one(log_dir, make_event, trust):
    with AuditLog.open(log_dir, signer=None, segment_max_records=3) as log:
        log.append([make_event() for _ in range(7)])
    assert [n for n, _ in list_segments(log_dir)] == [1, 2, 3]
    with AuditLog.open(log_dir, signer=None, segment_max_records=3) as log:
        log.append([make_event() for _ in range(3)])
    counts = [len(path.read_text().splitlines()) for _, path in list_segments(log_dir)]
    assert counts == [3, 3, 3, 1]
    first_seqs = [
        json.loads(path.read_text().splitlines()[0])["seq"] for _, path in list_segments(log_dir)
    ]
    assert first_seqs == [1, 4, 7, 10]
    assert verify_log(log_dir, trust).records == 10


def test_open_refuses_a_log_with_an_edited_record(log_dir, make_event, files):
    with AuditLog.open(log_dir, signer=None) as log:
        log.append([make_event() for _ in range(3)])
    records = files.records()
    records[1]["event"]["actor"] = "mallory"
    files.write_records(records)
    with pytest.raises(AuditLogError) as caught:
        AuditLog.open(log_dir, signer=None)
    assert caught.value.reason == "hash_mismatch"
    assert caught.value.seq == 2
    assert "seq 2" in str(caught.value)


def test_open_refuses_a_log_truncated_below_a_checkpoint(log_dir, make_event, signer, files):
    with AuditLog.open(log_dir, signer=signer) as log:
        log.append([make_event() for _ in range(3)])
    files.write_records(files.records()[:2])
    with pytest.raises(AuditLogError) as caught:
        AuditLog.open(log_dir, signer=signer)
    assert (caught.value.reason, caught.value.seq) == ("checkpoint_beyond_log", 3)


def test_a_refused_open_releases_the_lock(log_dir, make_event, files):
    with AuditLog.open(log_dir, signer=None) as log:
        log.append([make_event(), make_event()])
    files.write_records(files.records()[1:])
    for _ in range(2):
        with pytest.raises(AuditLogError) as caught:
            AuditLog.open(log_dir, signer=None)
        assert caught.value.reason == "seq_gap"


def test_second_writer_is_refused(log_dir):
    with AuditLog.open(log_dir, signer=None):
        with pytest.raises(AuditLogError) as caught:
            AuditLog.open(log_dir, signer=None)
        assert caught.value.reason == "locked"
    AuditLog.open(log_dir, signer=None).close()  # released on close


def test_a_signer_of_another_service_is_refused(log_dir, keys_dir):
    gateway = keys.KeyRing.create(keys_dir, "gateway").signing_key()
    with pytest.raises(AuditLogError) as caught:
        AuditLog.open(log_dir, signer=gateway)
    assert caught.value.reason == "wrong_signer"


def test_append_after_close_is_refused(log_dir, make_event):
    log = AuditLog.open(log_dir, signer=None)
    log.close()
    log.close()  # idempotent
    with pytest.raises(AuditLogError) as caught:
        log.append([make_event()])
    assert caught.value.reason == "closed"


def test_a_failed_fsync_refuses_further_appends(log_dir, make_event, monkeypatch):
    def failing_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    log = AuditLog.open(log_dir, signer=None)
    monkeypatch.setattr(log_module.os, "fsync", failing_fsync)
    with pytest.raises(AuditLogError) as caught:
        log.append([make_event()])
    assert caught.value.reason == "write_failed"
    monkeypatch.undo()
    with pytest.raises(AuditLogError) as again:
        log.append([make_event()])
    assert again.value.reason == "write_failed"
    assert log.last_seq == 0
    log.close()


def test_new_files_are_not_world_readable(log_dir, make_event, signer):
    with AuditLog.open(log_dir, signer=signer) as log:
        log.append([make_event()])
    for name in ("segment-000001.jsonl", CHECKPOINTS_FILE):
        assert os.stat(log_dir / name).st_mode & 0o007 == 0
