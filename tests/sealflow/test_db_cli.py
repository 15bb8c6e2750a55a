"""``sealflow db upgrade`` on both backends: migrates once, then reports the version it is at."""

from __future__ import annotations

from pathlib import Path

import psycopg
from click.testing import CliRunner
from store_testing import fresh_database

from identity.postgres import IDENTITY_SCHEMA
from sealflow.cli import cli
from store.postgres.audit_anchors import AUDIT_ANCHOR_SCHEMA
from store.postgres.migrations import SCHEMA_VERSION as PG_VERSION
from store.sqlite.schema import SCHEMA_VERSION as SQLITE_VERSION


def _upgrade(env: dict[str, str]) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["db", "upgrade"], env=env)
    return result.exit_code, result.output


def test_upgrade_creates_the_embedded_database_then_finds_it_current(tmp_path: Path) -> None:
    """Unset SEALFLOW_DATABASE_URL: the SQLite file under the data dir is created and migrated."""
    env = {"SEALFLOW_DATA_DIR": str(tmp_path), "SEALFLOW_DATABASE_URL": ""}
    assert _upgrade(env) == (0, f"sqlite: schema upgraded from version 0 to {SQLITE_VERSION}\n")
    assert (tmp_path / "jobs.db").is_file()
    assert _upgrade(env) == (0, f"sqlite: schema already at version {SQLITE_VERSION}\n")


def test_upgrade_migrates_a_fresh_postgresql_database_once(tmp_path: Path) -> None:
    """A ``postgresql://`` URL: every migration, the job store's, the identity's and the audit
    anchor's, runs once and is recorded in the database."""
    identity = IDENTITY_SCHEMA.version
    anchor = AUDIT_ANCHOR_SCHEMA.version
    with fresh_database() as url:
        env = {"SEALFLOW_DATA_DIR": str(tmp_path), "SEALFLOW_DATABASE_URL": url}
        assert _upgrade(env) == (
            0,
            f"postgresql: schema upgraded from version 0 to {PG_VERSION}\n"
            f"postgresql (identity): schema upgraded from version 0 to {identity}\n"
            f"postgresql (audit anchor): schema upgraded from version 0 to {anchor}\n",
        )
        assert _upgrade(env) == (
            0,
            f"postgresql: schema already at version {PG_VERSION}\n"
            f"postgresql (identity): schema already at version {identity}\n"
            f"postgresql (audit anchor): schema already at version {anchor}\n",
        )
        with psycopg.connect(url) as conn:
            versions = [row[0] for row in conn.execute("SELECT version FROM sealflow_schema")]
            mine = [row[0] for row in conn.execute("SELECT version FROM sealflow_identity_schema")]
            audit = [row[0] for row in conn.execute("SELECT version FROM sealflow_audit_schema")]
        assert versions == list(range(1, PG_VERSION + 1))
        assert mine == list(range(1, identity + 1))
        assert audit == list(range(1, anchor + 1))
    assert not (tmp_path / "jobs.db").exists()


def test_upgrade_refuses_a_database_url_of_another_kind(tmp_path: Path) -> None:
    """Only PostgreSQL URLs are a backend; anything else is a one-line error, nothing created."""
    env = {"SEALFLOW_DATA_DIR": str(tmp_path), "SEALFLOW_DATABASE_URL": "mysql://db/x"}
    code, output = _upgrade(env)
    assert code == 1
    assert "bad settings" in output
    assert not (tmp_path / "jobs.db").exists()


def test_upgrade_reports_an_unreachable_server(tmp_path: Path) -> None:
    """A server that does not answer is named as ``database_down``, without a traceback."""
    env = {
        "SEALFLOW_DATA_DIR": str(tmp_path),
        "SEALFLOW_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2",
    }
    code, output = _upgrade(env)
    assert code == 1
    assert output.startswith("Error: database_down: PostgreSQL is not usable")
