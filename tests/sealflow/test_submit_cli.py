"""`sealflow submit`: the gateway's upload path on the gateway's host, without HTTP."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sealflow_testing import queue_counts

from broker import Topology, connect
from sealflow.cli import cli
from store import SqliteJobStore

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture
def env(amqp_url: str, namespace: str, keys_dir: Path, tmp_path: Path) -> dict[str, str]:
    return {
        "SEALFLOW_AMQP_URL": amqp_url,
        "SEALFLOW_NAMESPACE": namespace,
        "SEALFLOW_DATA_DIR": str(tmp_path / "var"),
        "SEALFLOW_KEYS_DIR": str(keys_dir),
        "COLUMNS": "200",
    }


async def _submit(env: dict[str, str], *args: str) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, cli, ["submit", *args], env=env)


async def _jobs(env: dict[str, str]) -> list[tuple[str, str, str]]:
    store = await SqliteJobStore.open(Path(env["SEALFLOW_DATA_DIR"]) / "jobs.db")
    try:
        jobs = await store.list(owner=None, limit=50)
    finally:
        await store.close()
    return sorted((job.filename, job.owner, job.content_type) for job in jobs)


async def test_submit_records_and_publishes_each_file_as_the_gateway_would(
    env: dict[str, str], tmp_path: Path, cleanup_namespace: None
) -> None:
    notes, table = tmp_path / "notes.txt", tmp_path / "table.csv"
    notes.write_text("hello harbour\n")
    table.write_text("a,b\n1,2\n")
    result = await _submit(env, str(notes), str(table), "--owner", "alice")
    assert result.exit_code == 0, result.output
    assert result.output.count("submitted") == 2
    assert await _jobs(env) == [
        ("notes.txt", "alice", "text/plain"),
        ("table.csv", "alice", "text/csv"),
    ]
    connection = await connect(env["SEALFLOW_AMQP_URL"])
    try:
        channel = await connection.channel()
        name = Topology(env["SEALFLOW_NAMESPACE"]).queue("worker.jobs")
        assert (await queue_counts(channel, name))[0] == 2
    finally:
        await connection.close()


async def test_submit_refuses_what_the_gateway_refuses_and_records_nothing(
    env: dict[str, str], tmp_path: Path, cleanup_namespace: None
) -> None:
    """It used to take any file (a PNG went in as application/octet-stream)."""
    picture = tmp_path / "picture.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32)
    result = await _submit(env, str(picture))
    assert result.exit_code == 1
    assert "image/png" in result.output or "not" in result.output, result.output
    assert await _jobs(env) == []
    blobs = Path(env["SEALFLOW_DATA_DIR"]) / "blobs"
    assert [path for path in blobs.rglob("*") if path.is_file()] == []


def test_the_help_no_longer_waits_for_a_gateway() -> None:
    result = CliRunner().invoke(cli, ["submit", "--help"])
    assert result.exit_code == 0
    assert "until the gateway exists" not in result.output
    assert "upload path" in result.output
