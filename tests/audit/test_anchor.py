"""Cutting the log back (issue 11 item 1): chained checkpoints, the anchor outside the log
directory, stale checkpoints, and a writer that will not carry on from a cut."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import keys
import sealflow.commands.audit as audit_cli
from audit import AuditLog, AuditLogError, AuditSettings, verify_log
from audit.anchor import FileAnchor
from audit.checkpoint import sign_checkpoint
from audit.record import canonical_json
from audit.segments import CHECKPOINTS_FILE
from keys import KeyRing


def _now() -> datetime:
    return datetime.now(UTC)


def _unchained(line: dict[str, Any], signer: keys.SigningKey) -> dict[str, Any]:
    """A checkpoint line as the writer signed them before chaining: no ``prev``."""
    fields = {k: line[k] for k in ("seq", "hash", "ts", "kid", "alg")}
    signature = keys.sign(signer, canonical_json(fields))
    return {**fields, "sig": base64.urlsafe_b64encode(signature).rstrip(b"=").decode()}


@pytest.fixture
def anchor_path(tmp_path: Path) -> Path:
    """The anchor file: beside, never inside, the log directory."""
    return tmp_path / "anchor" / "audit-anchor.json"


@pytest.fixture
def anchored(log_dir, make_event, signer, anchor_path):
    """25 records, checkpoints at 10, 20 and (on close) 25, each anchored."""
    with AuditLog.open(
        log_dir, signer=signer, checkpoint_every=10, anchor=FileAnchor(anchor_path)
    ) as log:
        for _ in range(25):
            log.append([make_event()])
    return log_dir


def _cut_back_to_first_checkpoint(files) -> None:
    """The attack: drop the last records and the checkpoint lines that sign them."""
    files.write_records(files.records()[:10])
    files.write_checkpoints(files.checkpoints()[:1])


def test_the_anchor_holds_the_newest_checkpoint(anchored, anchor_path, files):
    anchor = FileAnchor(anchor_path).load()
    assert anchor is not None
    assert anchor.checkpoint.seq == 25
    assert json.loads(anchor_path.read_text()) == files.checkpoints()[-1]


def test_a_log_cut_back_to_an_earlier_checkpoint_fails_verify(anchored, trust, files, anchor_path):
    _cut_back_to_first_checkpoint(files)
    report = verify_log(anchored, trust, anchor=FileAnchor(anchor_path))
    assert (report.ok, report.reason, report.first_bad_seq) == (False, "behind_anchor", 11)
    assert "25" in report.detail


def test_cutting_the_log_back_fails_sealflow_audit_verify(
    anchored, files, data_dir, keys_dir, anchor_path, monkeypatch
):
    """The review's proof of concept, end to end through the CLI (exit 0 on the old code)."""
    monkeypatch.setenv("SEALFLOW_AUDIT_ANCHOR_FILE", str(anchor_path))
    _cut_back_to_first_checkpoint(files)
    result = CliRunner().invoke(
        audit_cli.audit, ["--data-dir", str(data_dir), "--keys-dir", str(keys_dir), "verify"]
    )
    assert result.exit_code == 1, result.output
    assert "BROKEN" in result.output
    assert "every record is covered" not in result.output


def test_the_default_anchor_catches_a_cut_through_the_cli(
    log_dir, make_event, signer, data_dir, keys_dir, files
):
    """With no setting, the daemon and the CLI agree on ``<data_dir>/audit-anchor.json``."""
    settings = AuditSettings(data_dir=data_dir, keys_dir=keys_dir)
    with AuditLog.open(
        log_dir, signer=signer, checkpoint_every=10, anchor=settings.anchor()
    ) as log:
        for _ in range(25):
            log.append([make_event()])
    assert (data_dir / "audit-anchor.json").is_file()
    _cut_back_to_first_checkpoint(files)
    result = CliRunner().invoke(
        audit_cli.audit, ["--data-dir", str(data_dir), "--keys-dir", str(keys_dir), "verify"]
    )
    assert result.exit_code == 1, result.output
    assert "behind_anchor" in result.output


def test_the_writer_refuses_to_reopen_a_log_behind_its_anchor(
    anchored, signer, files, anchor_path, make_event
):
    _cut_back_to_first_checkpoint(files)
    with pytest.raises(AuditLogError) as caught:
        AuditLog.open(anchored, signer=signer, anchor=FileAnchor(anchor_path))
    assert caught.value.reason == "behind_anchor"
    assert len(files.records()) == 10  # nothing was appended onto the cut


def test_the_daemon_refuses_to_start_on_a_log_behind_its_anchor(
    anchored, files, data_dir, keys_dir, anchor_path, tmp_path
):
    """``sealflow audit`` stops before it takes any message (it carried on from the cut)."""
    from audit.daemon import AuditDaemonSettings, serve
    from broker import BrokerSettings
    from keys import write_trust_store
    from schemas import SERVICES

    for service in SERVICES:
        KeyRing.open_or_create(keys_dir, service)
    write_trust_store(keys_dir)
    _cut_back_to_first_checkpoint(files)
    settings = BrokerSettings(
        amqp_url="amqp://guest:guest@127.0.0.1:1/",  # never reached: the log is refused first
        data_dir=data_dir,
        keys_dir=keys_dir,
        connect_timeout=1,
    )
    log_settings = AuditSettings(
        data_dir=data_dir, keys_dir=keys_dir, audit_anchor_file=anchor_path
    )
    with pytest.raises(AuditLogError) as caught:
        asyncio.run(serve(settings, AuditDaemonSettings(health_port=0, api_port=0), log_settings))
    assert caught.value.reason == "behind_anchor"


def test_a_deleted_anchor_fails_verify(anchored, trust, files, anchor_path):
    _cut_back_to_first_checkpoint(files)
    anchor_path.unlink()
    report = verify_log(anchored, trust, anchor=FileAnchor(anchor_path))
    assert (report.ok, report.reason) == (False, "anchor_missing")


def test_an_emptied_log_directory_is_behind_its_anchor(anchored, trust, anchor_path, signer):
    for path in anchored.iterdir():
        path.unlink()
    report = verify_log(anchored, trust, anchor=FileAnchor(anchor_path))
    assert (report.ok, report.reason) == (False, "behind_anchor")
    with pytest.raises(AuditLogError) as caught:
        AuditLog.open(anchored, signer=signer, anchor=FileAnchor(anchor_path))
    assert caught.value.reason == "behind_anchor"


def test_rewritten_checkpoints_do_not_match_the_anchor(anchored, trust, files, anchor_path, signer):
    """Re-signed with the real key (an insider), the new last checkpoint still differs."""
    checkpoints = files.checkpoints()
    last = sign_checkpoint(
        signer, 25, checkpoints[-1]["hash"], _now(), prev=checkpoints[-1]["prev"]
    )
    files.write_checkpoints([*checkpoints[:-1], last.to_json()])
    report = verify_log(anchored, trust, anchor=FileAnchor(anchor_path))
    assert (report.ok, report.reason, report.first_bad_seq) == (False, "anchor_mismatch", 25)


def test_a_removed_middle_checkpoint_breaks_the_checkpoint_chain(anchored, trust, files):
    checkpoints = files.checkpoints()
    files.write_checkpoints([checkpoints[0], checkpoints[2]])
    report = verify_log(anchored, trust)
    assert (report.ok, report.reason, report.first_bad_seq) == (False, "checkpoint_chain", 25)


def test_an_anchor_not_signed_by_the_audit_key_is_refused(anchored, trust, anchor_path, tmp_path):
    attacker = KeyRing.create(tmp_path / "attacker", "audit").signing_key()
    forged = sign_checkpoint(attacker, 999, "ab" * 32, _now())
    anchor_path.write_bytes(forged.to_line())
    report = verify_log(anchored, trust, anchor=FileAnchor(anchor_path))
    assert (report.ok, report.reason) == (False, "anchor_signature")


def test_checkpoints_cut_but_records_kept_are_stale_after_the_interval(anchored, trust, files):
    """Without the anchor, dropping the newest checkpoints leaves an unsigned tail that no
    writer would have left unsigned for longer than the checkpoint interval plus slack."""
    checkpoints = files.checkpoints()[:1]
    files.write_checkpoints(checkpoints)
    newest = datetime.fromisoformat(checkpoints[0]["ts"]).timestamp()
    fresh = verify_log(anchored, trust, max_unsigned_age=90, now=newest + 60)
    assert fresh.ok, fresh.detail
    report = verify_log(anchored, trust, max_unsigned_age=90, now=newest + 91)
    assert (report.ok, report.reason, report.first_bad_seq) == (False, "checkpoint_stale", 11)
    assert "15 record(s)" in report.detail


def test_an_unsigned_log_is_stale_after_the_interval(log_dir, make_event, trust, files):
    with AuditLog.open(log_dir, signer=None) as log:
        log.append([make_event() for _ in range(3)])
    first = datetime.fromisoformat(files.records()[0]["ts"]).timestamp()
    assert verify_log(log_dir, trust, max_unsigned_age=90, now=first + 30).ok
    report = verify_log(log_dir, trust, max_unsigned_age=90, now=first + 91)
    assert (report.ok, report.reason, report.first_bad_seq) == (False, "checkpoint_stale", 1)


def test_an_anchor_one_checkpoint_behind_is_a_crash_not_a_cut(
    anchored, signer, trust, files, anchor_path, make_event
):
    """A crash between the checkpoint and its anchoring leaves the anchor one behind: the log
    opens, and the anchor catches up."""
    checkpoints = files.checkpoints()
    anchor_path.write_text(json.dumps(checkpoints[1]) + "\n")
    with AuditLog.open(anchored, signer=signer, anchor=FileAnchor(anchor_path)) as log:
        log.append([make_event()])
    decoded = FileAnchor(anchor_path).load()
    assert decoded is not None
    assert decoded.checkpoint.seq == 26
    assert verify_log(anchored, trust, anchor=FileAnchor(anchor_path)).ok


def test_reopening_signs_a_tail_a_crash_left_unsigned(
    log_dir, make_event, signer, trust, anchor_path, files
):
    with AuditLog.open(log_dir, signer=None) as log:  # records, and no checkpoint after them
        log.append([make_event() for _ in range(3)])
    assert not (log_dir / CHECKPOINTS_FILE).exists()
    with AuditLog.open(log_dir, signer=signer, anchor=FileAnchor(anchor_path)):
        assert [c["seq"] for c in files.checkpoints()] == [3]
    decoded = FileAnchor(anchor_path).load()
    assert decoded is not None
    assert decoded.checkpoint.seq == 3


def test_a_log_from_before_chaining_still_verifies_and_is_chained_from_then_on(
    log_dir, make_event, signer, trust, files, anchor_path
):
    with AuditLog.open(log_dir, signer=signer, checkpoint_every=5) as log:
        for _ in range(10):
            log.append([make_event()])
    files.write_checkpoints([_unchained(line, signer) for line in files.checkpoints()])
    assert verify_log(log_dir, trust).ok
    with AuditLog.open(log_dir, signer=signer, anchor=FileAnchor(anchor_path)) as log:
        log.append([make_event()])
    assert "prev" in files.checkpoints()[-1]
    report = verify_log(log_dir, trust, anchor=FileAnchor(anchor_path))
    assert report.ok, report.detail


def test_an_unchained_checkpoint_after_chained_ones_is_refused(anchored, trust, files, signer):
    checkpoints = files.checkpoints()
    checkpoints[-1] = _unchained(checkpoints[-1], signer)
    files.write_checkpoints(checkpoints)
    report = verify_log(anchored, trust)
    assert (report.ok, report.reason, report.first_bad_seq) == (False, "checkpoint_chain", 25)


def test_an_anchor_inside_the_log_directory_is_refused(data_dir, keys_dir):
    settings = AuditSettings(
        data_dir=data_dir, keys_dir=keys_dir, audit_anchor_file=data_dir / "audit" / "a.json"
    )
    with pytest.raises(AuditLogError) as caught:
        settings.anchor()
    assert caught.value.reason == "invalid_setting"


def test_the_writer_refuses_a_chained_log_whose_anchor_was_deleted(
    anchored, signer, files, anchor_path
):
    """Deleting the anchor along with the cut does not let the daemon re-anchor the cut."""
    _cut_back_to_first_checkpoint(files)
    anchor_path.unlink()
    with pytest.raises(AuditLogError) as caught:
        AuditLog.open(anchored, signer=signer, anchor=FileAnchor(anchor_path))
    assert caught.value.reason == "anchor_missing"
    assert "sealflow audit anchor --adopt" in caught.value.detail


def _cli(data_dir: Path, keys_dir: Path, *args: str) -> Any:
    return CliRunner().invoke(
        audit_cli.audit, ["--data-dir", str(data_dir), "--keys-dir", str(keys_dir), *args]
    )


def test_an_operator_adopts_a_lost_anchor_on_purpose(
    log_dir, make_event, signer, data_dir, keys_dir, trust
):
    settings = AuditSettings(data_dir=data_dir, keys_dir=keys_dir)
    with AuditLog.open(
        log_dir, signer=signer, checkpoint_every=10, anchor=settings.anchor()
    ) as log:
        log.append([make_event() for _ in range(12)])
    shown = _cli(data_dir, keys_dir, "anchor")
    assert shown.exit_code == 0, shown.output
    assert "checkpoint seq 12" in shown.output
    refused = _cli(data_dir, keys_dir, "anchor", "--adopt")
    assert refused.exit_code == 1
    assert "anchor_exists" in refused.output
    settings.anchor_path.unlink()
    assert "nothing is anchored" in _cli(data_dir, keys_dir, "anchor").output
    adopted = _cli(data_dir, keys_dir, "anchor", "--adopt")
    assert adopted.exit_code == 0, adopted.output
    assert "seq 12" in adopted.output
    with AuditLog.open(log_dir, signer=signer, anchor=settings.anchor()) as log:
        log.append([make_event()])
    assert verify_log(log_dir, trust, anchor=settings.anchor()).ok


def test_a_broken_log_is_not_adopted(anchored, files, data_dir, keys_dir, anchor_path):
    records = files.records()
    records[3]["event"]["actor"] = "mallory"
    files.write_records(records)
    result = CliRunner().invoke(
        audit_cli.audit,
        ["--data-dir", str(data_dir), "--keys-dir", str(keys_dir), "anchor", "--adopt"],
        env={"SEALFLOW_AUDIT_ANCHOR_FILE": str(anchor_path.parent / "new.json")},
    )
    assert result.exit_code == 1
    assert "anchor_refused" in result.output
    assert not (anchor_path.parent / "new.json").exists()


def test_the_anchor_file_is_private_whatever_the_umask(anchored, anchor_path):
    """Issue 11 item 7: data files 0600 in directories 0700."""
    assert anchor_path.stat().st_mode & 0o777 == 0o600
    assert anchor_path.parent.stat().st_mode & 0o777 == 0o700
