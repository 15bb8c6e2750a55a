"""The anchor in PostgreSQL (DESIGN §8): a host whose disk is rewound, log and anchor file
together, fails verify; the row is shared by every host; it never moves back."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from gateway_testing import free_port

import sealflow.commands.audit as audit_cli
from audit import AuditLog, AuditLogError, AuditSettings, verify_log
from audit.anchor import PgAnchor
from keys import SigningKey
from sealflow.commands.db import db as db_cli


@pytest.fixture
def pg_env(postgres_url: str, monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> str:
    """The process environment of a host on PostgreSQL, in its own namespace, its schema
    migrated as an operator would (``sealflow db upgrade``)."""
    monkeypatch.setenv("SEALFLOW_DATABASE_URL", postgres_url)
    monkeypatch.setenv("SEALFLOW_NAMESPACE", f"test-{uuid.uuid4().hex[:12]}")
    monkeypatch.setenv("SEALFLOW_DATA_DIR", str(data_dir))
    result = CliRunner().invoke(db_cli, ["upgrade"])
    assert result.exit_code == 0, result.output
    return postgres_url


def _write(settings: AuditSettings, signer: SigningKey, make_event, count: int) -> None:
    """Append ``count`` records (a checkpoint every 10, and one on close), anchored."""
    with AuditLog.open(
        settings.audit_dir, signer=signer, checkpoint_every=10, anchor=settings.anchor()
    ) as log:
        for _ in range(count):
            log.append([make_event()])


def _verify_cli(data_dir: Path, keys_dir: Path) -> tuple[int, str]:
    """``sealflow audit verify`` on ``data_dir``: exit code and output."""
    result = CliRunner().invoke(
        audit_cli.audit, ["--data-dir", str(data_dir), "--keys-dir", str(keys_dir), "verify"]
    )
    return result.exit_code, result.output


def _anchor(settings: AuditSettings) -> PgAnchor:
    """The settings' anchor, which must be the database's."""
    anchor = settings.anchor()
    assert isinstance(anchor, PgAnchor)
    return anchor


def test_rewinding_the_disk_log_and_anchor_file_together_fails_verify(
    pg_env, data_dir, keys_dir, signer, make_event, tmp_path
):
    """The attack: snapshot the data directory, let the log grow, put the snapshot back (log
    and anchor file from the same moment). Exit 0 on the code with only the file anchor."""
    settings = AuditSettings(data_dir=data_dir, keys_dir=keys_dir)
    _write(settings, signer, make_event, 10)
    snapshot = tmp_path / "snapshot"
    shutil.copytree(data_dir, snapshot)
    _write(settings, signer, make_event, 15)
    assert _verify_cli(data_dir, keys_dir)[0] == 0

    shutil.rmtree(data_dir)
    shutil.copytree(snapshot, data_dir)
    code, output = _verify_cli(data_dir, keys_dir)
    assert code == 1, output
    assert "behind_anchor" in output


def test_the_row_holds_the_newest_checkpoint_and_the_anchor_file_is_not_used(
    pg_env, data_dir, keys_dir, signer, make_event, files
):
    settings = AuditSettings(data_dir=data_dir, keys_dir=keys_dir)
    _write(settings, signer, make_event, 25)
    anchored = _anchor(settings).load()
    assert anchored is not None
    assert anchored.checkpoint.to_json() == files.checkpoints()[-1]
    assert not settings.anchor_path.exists()


def test_the_writer_refuses_to_reopen_a_rewound_disk(
    pg_env, data_dir, keys_dir, signer, make_event, tmp_path, files
):
    settings = AuditSettings(data_dir=data_dir, keys_dir=keys_dir)
    _write(settings, signer, make_event, 10)
    shutil.copytree(data_dir, tmp_path / "snapshot")
    _write(settings, signer, make_event, 15)
    shutil.rmtree(data_dir)
    shutil.copytree(tmp_path / "snapshot", data_dir)
    with pytest.raises(AuditLogError) as caught:
        AuditLog.open(settings.audit_dir, signer=signer, anchor=settings.anchor())
    assert caught.value.reason == "behind_anchor"
    assert len(files.records()) == 10  # nothing was appended onto the rewound log


def test_another_host_on_another_data_dir_sees_the_same_anchor(
    pg_env, data_dir, keys_dir, signer, trust, make_event, tmp_path
):
    """A standby host (its own data directory) naming the active's log reads the active's
    row, so it can check a copy of that log; its own log has a row of its own."""
    active = AuditSettings(data_dir=data_dir, keys_dir=keys_dir, audit_log_name="audit-a")
    _write(active, signer, make_event, 25)
    standby = AuditSettings(data_dir=tmp_path / "standby", keys_dir=keys_dir)
    seen = active.model_copy(update={"data_dir": standby.data_dir}).anchor()
    held = _anchor(active).load()
    assert held is not None
    assert seen.load() == held

    _write(standby, signer, make_event, 5)
    own = standby.anchor().load()
    assert own is not None
    assert own.checkpoint.seq == 5
    assert _anchor(active).load() == held
    assert standby.log_id != active.log_id
    assert verify_log(standby.audit_dir, trust, anchor=standby.anchor()).ok


def test_the_anchor_never_moves_back(pg_env, data_dir, keys_dir, signer, make_event):
    """Neither the anchor's own write nor a direct UPDATE can take the row to an earlier
    checkpoint, or swap the checkpoint at the same seq; storing the same one again is fine."""
    settings = AuditSettings(data_dir=data_dir, keys_dir=keys_dir)
    _write(settings, signer, make_event, 10)
    first = _anchor(settings).load()
    assert first is not None
    assert first.checkpoint.seq == 10
    _write(settings, signer, make_event, 10)
    newest = _anchor(settings).load()
    assert newest is not None
    assert newest.checkpoint.seq == 20

    anchor = PgAnchor(pg_env, settings.log_id)  # a fresh handle: only the database refuses
    with pytest.raises(AuditLogError) as caught:
        anchor.store(first.checkpoint)
    assert caught.value.reason == "anchor_regression"
    anchor.store(newest.checkpoint)
    with psycopg.connect(pg_env, autocommit=True) as conn:
        for statement, values in (
            ("UPDATE audit_anchors SET seq = 10 WHERE log_id = %s", (settings.log_id,)),
            ("UPDATE audit_anchors SET checkpoint = '{}' WHERE log_id = %s", (settings.log_id,)),
        ):
            with pytest.raises(psycopg.errors.CheckViolation):
                conn.execute(statement, values)
    assert anchor.load() == newest


def test_an_unreachable_database_fails_verify_as_anchor_unreadable(
    data_dir, keys_dir, signer, trust, make_event, tmp_path
):
    settings = AuditSettings(
        data_dir=data_dir,
        keys_dir=keys_dir,
        database_url=f"postgresql://sealflow:secret@127.0.0.1:{free_port()}/nowhere",
    )
    report = verify_log(settings.audit_dir, trust, anchor=settings.anchor())
    assert (report.ok, report.reason) == (False, "anchor_unreadable")
    assert "secret" not in report.detail
    assert "secret" not in settings.anchor().where
    with pytest.raises(AuditLogError) as caught:
        AuditLog.open(settings.audit_dir, signer=signer, anchor=settings.anchor())
    assert caught.value.reason == "anchor_unreadable"


def test_an_operator_adopts_a_log_into_an_empty_database(
    pg_env, data_dir, keys_dir, signer, make_event, monkeypatch
):
    """Moving an anchored log from the file anchor to PostgreSQL: refused until adopted."""
    monkeypatch.delenv("SEALFLOW_DATABASE_URL")
    on_file = AuditSettings(data_dir=data_dir, keys_dir=keys_dir)
    _write(on_file, signer, make_event, 12)
    monkeypatch.setenv("SEALFLOW_DATABASE_URL", pg_env)
    settings = AuditSettings(data_dir=data_dir, keys_dir=keys_dir)
    with pytest.raises(AuditLogError) as caught:
        AuditLog.open(settings.audit_dir, signer=signer, anchor=settings.anchor())
    assert caught.value.reason == "anchor_missing"
    result = CliRunner().invoke(
        audit_cli.audit,
        ["--data-dir", str(data_dir), "--keys-dir", str(keys_dir), "anchor", "--adopt"],
    )
    assert result.exit_code == 0, result.output
    assert "PostgreSQL" in result.output
    anchored = _anchor(settings).load()
    assert anchored is not None
    assert anchored.checkpoint.seq == 12


def test_the_daemon_creates_the_anchor_table(postgres_url, data_dir, keys_dir):
    """``open_anchor`` (the daemon's start) migrates its own schema, idempotently."""
    settings = AuditSettings(
        data_dir=data_dir, keys_dir=keys_dir, database_url=postgres_url, namespace="t"
    )
    for _ in range(2):
        anchor = asyncio.run(settings.open_anchor())
        assert isinstance(anchor, PgAnchor)
    with psycopg.connect(postgres_url) as conn:
        row = conn.execute("SELECT max(version) FROM sealflow_audit_schema").fetchone()
    assert row == (1,)


def test_the_daemon_does_not_start_without_its_database(data_dir, keys_dir):
    """``sealflow audit`` on PostgreSQL that cannot reach it stops before taking any message,
    rather than writing an unanchored log."""
    from audit.daemon import AuditDaemonSettings, serve
    from broker import BrokerSettings
    from keys import KeyRing, write_trust_store
    from schemas import SERVICES

    for service in SERVICES:
        KeyRing.open_or_create(keys_dir, service)
    write_trust_store(keys_dir)
    settings = BrokerSettings(
        amqp_url="amqp://guest:guest@127.0.0.1:1/",  # never reached: the anchor fails first
        data_dir=data_dir,
        keys_dir=keys_dir,
        connect_timeout=1,
    )
    log_settings = AuditSettings(
        data_dir=data_dir,
        keys_dir=keys_dir,
        database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere",
    )
    with pytest.raises(AuditLogError) as caught:
        asyncio.run(serve(settings, AuditDaemonSettings(health_port=0, api_port=0), log_settings))
    assert caught.value.reason == "anchor_unavailable"
    assert not (data_dir / "audit").exists()


def test_a_log_name_too_long_for_its_row_is_a_setting_error(data_dir, keys_dir, postgres_url):
    settings = AuditSettings(
        data_dir=data_dir, keys_dir=keys_dir, database_url=postgres_url, audit_log_name="x" * 256
    )
    assert isinstance(settings.anchor(), PgAnchor)
    too_long = settings.model_copy(update={"namespace": "n" * 64, "audit_log_name": "é" * 256})
    with pytest.raises(AuditLogError) as caught:
        too_long.anchor()
    assert caught.value.reason == "invalid_setting"
