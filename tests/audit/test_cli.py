"""``sealflow audit tail|verify|query`` through click's CliRunner."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

import sealflow.commands.audit as audit_cli
from audit import AuditLog, AuditSettings

JOB = "c" * 32


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def populated(log_dir, make_event, signer, data_dir, keys_dir):
    anchor = AuditSettings(data_dir=data_dir, keys_dir=keys_dir).anchor()
    with AuditLog.open(log_dir, signer=signer, checkpoint_every=10, anchor=anchor) as log:
        for index in range(25):
            log.append([make_event(actor=f"user{index % 3}")])
        log.append(
            [
                make_event(type="envelope.rejected", outcome="rejected", actor="worker"),
                make_event(type="job.failed", outcome="failure", job=JOB),
                make_event(type="job.submitted", outcome="denied", actor="eve"),
            ]
        )
    return log_dir


def _run(runner, data_dir, keys_dir, *args):
    return runner.invoke(
        audit_cli.audit, ["--data-dir", str(data_dir), "--keys-dir", str(keys_dir), *args]
    )


def _error_line(result) -> str:
    """The one error line: stderr is where the data dir and keys dir used were named, then it."""
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("using data dir "), lines
    assert len(lines) == 2, lines
    assert not result.stdout
    return lines[1]


def test_tail_json_prints_the_last_records_as_json_lines(runner, populated, data_dir, keys_dir):
    result = _run(runner, data_dir, keys_dir, "tail", "--json")
    assert result.exit_code == 0, result.stdout
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["seq"] for line in lines] == list(range(9, 29))  # default: the last 20
    assert set(lines[0]) == {"seq", "ts", "event", "prev", "hash"}
    assert lines[-1]["event"]["actor"] == "eve"
    assert "\x1b[" not in result.stdout


def test_tail_lines_and_filters(runner, populated, data_dir, keys_dir):
    result = _run(runner, data_dir, keys_dir, "tail", "-n", "2", "--actor", "user0", "--json")
    assert result.exit_code == 0, result.stdout
    seqs = [json.loads(line)["seq"] for line in result.stdout.splitlines()]
    assert seqs == [22, 25]
    result = _run(
        runner,
        data_dir,
        keys_dir,
        "tail",
        "--type",
        "job.failed",
        "--type",
        "envelope.rejected",
        "--json",
    )
    assert [json.loads(line)["seq"] for line in result.stdout.splitlines()] == [26, 27]
    result = _run(runner, data_dir, keys_dir, "tail", "--job", JOB, "--json")
    assert [json.loads(line)["seq"] for line in result.stdout.splitlines()] == [27]


def test_tail_human_output_names_the_outcome_without_colour(runner, populated, data_dir, keys_dir):
    result = _run(runner, data_dir, keys_dir, "tail", "-n", "3")
    assert result.exit_code == 0, result.stdout
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert "REJECTED" in lines[0]
    assert "envelope.rejected" in lines[0]
    assert "actor=worker" in lines[0]
    assert "FAILURE" in lines[1]
    assert f"job={JOB}" in lines[1]
    assert "DENIED" in lines[2]
    assert "actor=eve" in lines[2]
    assert lines[2].split()[0] == "28"
    assert "\x1b[" not in result.stdout


def test_tail_human_output_is_coloured_by_outcome_on_a_terminal(monkeypatch, populated, log_dir):
    from io import StringIO

    from rich.console import Console

    from audit import iter_records

    buffer = StringIO()
    console = Console(
        file=buffer, force_terminal=True, color_system="standard", highlight=False, soft_wrap=True
    )
    for record in iter_records(log_dir, last=4):
        console.print(audit_cli._record_text(record))
    lines = buffer.getvalue().splitlines()
    assert "\x1b[1;32m" in lines[0]  # success: bold green
    assert "\x1b[1;31m" in lines[1]  # rejected: bold red
    assert "\x1b[1;31m" in lines[2]  # failure: bold red
    assert "\x1b[1;33m" in lines[3]  # denied: bold yellow


def test_tail_since(runner, populated, data_dir, keys_dir):
    result = _run(runner, data_dir, keys_dir, "tail", "-n", "100", "--since", "1h", "--json")
    assert len(result.stdout.splitlines()) == 28
    result = _run(runner, data_dir, keys_dir, "tail", "--since", "2999-01-01T00:00:00", "--json")
    assert result.exit_code == 0
    assert result.stdout == ""


def test_a_bad_since_is_a_usage_error(runner, populated, data_dir, keys_dir):
    result = _run(runner, data_dir, keys_dir, "tail", "--since", "yesterday-ish")
    assert result.exit_code == 2
    assert "relative time" in result.stderr


def test_tail_follow_exits_quietly_on_ctrl_c(runner, populated, data_dir, keys_dir, monkeypatch):
    calls = []

    async def interrupted(directory, flt, *, last):
        calls.append(last)
        for record in audit_cli.iter_records(directory, flt, last=last):
            yield record
        raise KeyboardInterrupt

    monkeypatch.setattr(audit_cli, "follow_records", interrupted)
    result = _run(runner, data_dir, keys_dir, "tail", "-f", "-n", "2", "--json")
    assert result.exit_code == 0
    assert calls == [2]
    assert [json.loads(line)["seq"] for line in result.stdout.splitlines()] == [27, 28]
    assert "Aborted" not in result.stdout


def test_verify_ok_exits_0(runner, populated, data_dir, keys_dir):
    result = _run(runner, data_dir, keys_dir, "verify")
    assert result.exit_code == 0, result.stdout
    assert result.stdout.startswith("audit log intact: 28 records, 3 checkpoints, last seq 28")


def test_verify_broken_exits_1_and_names_the_seq(runner, populated, data_dir, keys_dir, files):
    records = files.records()
    records[2]["event"]["actor"] = "mallory"
    files.write_records(records)
    result = _run(runner, data_dir, keys_dir, "verify")
    assert result.exit_code == 1
    assert result.stdout.startswith(
        "audit log BROKEN at seq 3 (segment-000001.jsonl:3): hash_mismatch — "
    )
    assert "Traceback" not in result.stdout


def test_verify_json(runner, populated, data_dir, keys_dir, files):
    files.write_records(files.records()[:15])
    result = _run(runner, data_dir, keys_dir, "verify", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert (report["reason"], report["first_bad_seq"]) == ("checkpoint_beyond_log", 16)


def test_verify_missing_log_is_intact_and_says_empty(runner, tmp_path, keys_dir, ring):
    result = _run(runner, tmp_path / "empty", keys_dir, "verify")
    assert result.exit_code == 0
    assert "intact: 0 records" in result.stdout
    assert "empty" in result.stdout


def test_verify_without_audit_keys_is_a_one_line_error(runner, populated, data_dir, tmp_path):
    result = _run(runner, data_dir, tmp_path / "no-keys", "verify")
    assert result.exit_code == 1
    error = _error_line(result)
    assert "cannot load the audit keys" in error
    assert str((tmp_path / "no-keys").resolve()) in error


def test_query_filters_and_limit(runner, populated, data_dir, keys_dir):
    result = _run(runner, data_dir, keys_dir, "query", "--actor", "user1", "--limit", "3", "--json")
    assert result.exit_code == 0, result.stdout
    assert [json.loads(line)["seq"] for line in result.stdout.splitlines()] == [2, 5, 8]
    result = _run(runner, data_dir, keys_dir, "query", "--type", "job.failed")
    assert result.exit_code == 0
    assert len(result.stdout.splitlines()) == 1
    assert "FAILURE" in result.stdout


def test_a_damaged_log_is_a_one_line_error_for_readers(
    runner, populated, data_dir, keys_dir, files
):
    lines = files.segment().read_text().splitlines()
    lines[0] = "garbage"
    files.segment().write_text("\n".join(lines) + "\n")
    result = _run(runner, data_dir, keys_dir, "query")
    assert result.exit_code == 1
    error = _error_line(result)
    assert "segment-000001.jsonl:1" in error
    assert "malformed_record" in error


def test_data_dir_defaults_to_the_environment(runner, populated, data_dir, keys_dir, monkeypatch):
    monkeypatch.setenv("SEALFLOW_DATA_DIR", str(data_dir))
    monkeypatch.setenv("SEALFLOW_KEYS_DIR", str(keys_dir))
    result = runner.invoke(audit_cli.audit, ["verify"])
    assert result.exit_code == 0, result.stdout
    assert "28 records" in result.stdout


def test_group_without_a_subcommand_runs_the_daemon(runner, monkeypatch, tmp_path):
    import broker

    started = []
    monkeypatch.setattr(
        broker,
        "run_daemon",
        lambda service, serve: started.append(os.environ["SEALFLOW_DATA_DIR"]),
    )
    monkeypatch.setenv("SEALFLOW_DATA_DIR", "elsewhere")  # restored after the test
    result = runner.invoke(audit_cli.audit, ["--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.stdout
    assert started == [str(tmp_path)]  # the option reaches the daemon's own settings


def test_a_daemon_that_cannot_open_its_log_fails_in_one_line(runner, monkeypatch, tmp_path):
    import broker
    from audit import AuditLogError

    def broken(service: str, serve: object) -> None:
        raise AuditLogError("refusing to open a broken audit log at seq 3", reason="hash_mismatch")

    monkeypatch.setattr(broker, "run_daemon", broken)
    monkeypatch.setenv("SEALFLOW_DATA_DIR", str(tmp_path))
    result = runner.invoke(audit_cli.audit, [])
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: refusing to open a broken audit log at seq 3 [hash_mismatch]"
    )


def test_verify_still_passes_after_the_audit_key_is_rotated_and_pruned(
    runner, log_dir, data_dir, keys_dir, ring, signer, make_event
):
    """Checkpoints signed by a pruned key verify against the ring's archive of public keys."""
    anchor = AuditSettings(data_dir=data_dir, keys_dir=keys_dir).anchor()
    with AuditLog.open(log_dir, signer=signer, checkpoint_every=5, anchor=anchor) as log:
        for _ in range(10):
            log.append([make_event()])
    ring.add_next()
    ring.promote_next(grace_seconds=0)
    assert ring.prune() == [signer.kid]
    assert not (keys_dir / "audit" / f"{signer.kid}.pem").exists()
    with AuditLog.open(
        log_dir, signer=ring.signing_key(), checkpoint_every=5, anchor=anchor
    ) as log:
        for _ in range(5):
            log.append([make_event()])
    result = _run(runner, data_dir, keys_dir, "verify")
    assert result.exit_code == 0, result.stdout
    assert "15 records" in result.stdout


def test_readers_name_the_directories_they_used(runner, populated, data_dir, keys_dir):
    """Every reading subcommand says, on stderr, which data and keys directories it read."""
    for args in (["tail"], ["query"], ["verify"], ["anchor"]):
        result = _run(runner, data_dir, keys_dir, *args)
        assert result.exit_code == 0, result.output
        assert result.stderr.splitlines()[0] == (
            f"using data dir {data_dir.resolve()}, keys dir {keys_dir.resolve()}"
        )


def test_tail_and_query_outside_a_data_dir_fail_naming_where_they_looked(runner, tmp_path):
    """Run from the wrong place, tail and query exit 1 and name the directory, not print nothing."""
    empty = tmp_path / "elsewhere"
    for command in ("tail", "query"):
        result = _run(runner, empty, tmp_path / "keys", command)
        assert result.exit_code == 1
        assert f"no audit log at {(empty / 'audit').resolve()}" in result.stderr
        assert "SEALFLOW_DATA_DIR" in result.stderr


def test_tail_with_nothing_matching_says_so(runner, populated, data_dir, keys_dir):
    """An empty answer is said plainly on stderr; stdout stays empty for scripts."""
    result = _run(runner, data_dir, keys_dir, "tail", "--actor", "nobody-at-all")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "no matching audit records in" in result.stderr


def test_verify_without_keys_does_not_advise_making_new_ones_first(
    runner, populated, data_dir, tmp_path
):
    """Missing keys name the setting to fix before suggesting `keys init` (a new installation)."""
    result = _run(runner, data_dir, tmp_path / "no-keys", "verify")
    assert result.exit_code == 1
    assert "point it at this host's keys, or run `sealflow keys init` there" in result.stderr
