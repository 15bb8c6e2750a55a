"""The daemons as real processes: `sealflow up` end to end, and SIGTERM in the middle of work."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_processes import REPO, Daemons, daemon_env
from gateway_testing import free_port

from store import SqliteJobStore

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(240)]


@pytest.fixture
def sealflow_env(
    amqp_url: str, namespace: str, tmp_path: Path, cleanup_namespace: None
) -> dict[str, str]:
    """Every daemon's and command's environment: keys under the data dir, as `make up` has it."""
    var = tmp_path / "var"
    audit_port = free_port()  # the audit query API, which the gateway reads the log through
    return daemon_env(
        amqp_url,
        namespace,
        var,
        var / "keys",
        SEALFLOW_AUDIT_API_PORT=str(audit_port),
        SEALFLOW_AUDIT_URL=f"http://127.0.0.1:{audit_port}",
        SEALFLOW_IDENTITY_PORT="0",
        SEALFLOW_IDENTITY_HEALTH_PORT="0",
        SEALFLOW_GATEWAY_PORT="0",
        SEALFLOW_GATEWAY_HEALTH_PORT="0",
        SEALFLOW_CHECKPOINT_EVERY="3",
        SEALFLOW_SHUTDOWN_GRACE="20",
    )


def sealflow(
    env: dict[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sealflow", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def daemons(sealflow_env: dict[str, str]) -> Iterator[Daemons]:
    """The test's daemon processes; whatever still runs at the end is killed."""
    started = Daemons(sealflow_env)
    try:
        yield started
    finally:
        started.kill_leftovers()


def keys_init(env: dict[str, str]) -> None:
    """``sealflow keys init``: every daemon looks for its key ring as it starts."""
    result = sealflow(env, "keys", "init")
    assert result.returncode == 0, result.stdout + result.stderr


def test_sealflow_up_runs_a_document_to_done_with_an_audit_trail(
    sealflow_env: dict[str, str], daemons: Daemons
) -> None:
    up = daemons.launch("up", "--no-start-broker")
    up.wait_for("daemon.ready", count=3)

    submitted = sealflow(
        sealflow_env, "submit", "docs/sample.md", "--owner", "alice", "--wait", "60"
    )
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    assert "done" in submitted.stdout

    tail = sealflow(sealflow_env, "audit", "tail", "--json", "-n", "50")
    assert tail.returncode == 0, tail.stderr
    records = [json.loads(line) for line in tail.stdout.splitlines() if line.strip()]
    types = [r["event"]["type"] for r in records]
    for expected in ("job.submitted", "job.started", "document.parsed", "job.completed"):
        assert expected in types, types
    assert daemons.stop("up", signal.SIGINT) == 0
    verify = sealflow(sealflow_env, "audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "intact" in verify.stdout


def test_daemon_serves_health_readiness_and_metrics(
    sealflow_env: dict[str, str], daemons: Daemons
) -> None:
    import urllib.request

    port = free_port()
    keys_init(sealflow_env)
    daemons.env = {**sealflow_env, "SEALFLOW_PARSER_HEALTH_PORT": str(port)}  # a known port
    daemons.start("parser")

    def get(path: str) -> tuple[int, str]:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()

    assert get("/healthz") == (200, json.dumps({"status": "ok", "service": "parser"}))
    status, body = get("/readyz")
    assert status == 200
    assert json.loads(body)["status"] == "ready"
    status, metrics = get("/metrics")
    assert status == 200
    assert "sealflow_envelope_open_seconds" in metrics
    assert "sealflow_messages_rejected_total" in metrics
    assert daemons.stop("parser") == 0


def test_sigterm_during_work_loses_nothing(
    sealflow_env: dict[str, str], daemons: Daemons, tmp_path: Path
) -> None:
    keys_init(sealflow_env)  # before any daemon starts: each one loads its keys first
    worker = daemons.start("audit", "parser", "worker")[-1]

    files = []
    for i in range(12):
        path = tmp_path / f"doc-{i}.txt"
        path.write_text(f"document number {i}\n" * 50)
        files.append(str(path))
    submitted = sealflow(sealflow_env, "submit", *files)
    assert submitted.returncode == 0, submitted.stderr
    worker.wait_for("message.handled")  # SIGTERM lands while the rest of the jobs are queued
    assert daemons.stop("worker") == 0
    assert worker.count("daemon.stopping") >= 1
    handled = [line.fields for line in worker.events("message.handled")]
    assert handled, "the worker logged no handled message"
    for field in ("service", "job", "jti", "trace", "timestamp", "level"):
        assert handled[0].get(field), (field, handled[0])
    assert handled[0]["service"] == "worker"

    (restarted,) = daemons.start("worker")
    started = restarted.wait_for("runtime.started").fields
    assert started["spent_ids_restored"] >= 1  # spent jtis survive the restart

    async def final_states() -> list[str]:
        store = await SqliteJobStore.open(Path(sealflow_env["SEALFLOW_DATA_DIR"]) / "jobs.db")
        try:
            async with asyncio.timeout(90):
                while True:
                    jobs = await store.list(owner=None, limit=100)
                    if len(jobs) == 12 and all(j.state in {"done", "failed"} for j in jobs):
                        return [j.state for j in jobs]
                    await asyncio.sleep(0.1)
        finally:
            await store.close()

    assert asyncio.run(final_states()) == ["done"] * 12
