"""The daemons as real processes: `sealflow up` end to end, and SIGTERM in the middle of work."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from store import SqliteJobStore

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(240)]

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def sealflow_env(
    amqp_url: str, namespace: str, tmp_path: Path, cleanup_namespace: None
) -> dict[str, str]:
    env = dict(os.environ)
    audit_port = _free_port()  # the audit query API, which the gateway reads the log through
    env.update(
        SEALFLOW_AMQP_URL=amqp_url,
        SEALFLOW_NAMESPACE=namespace,
        SEALFLOW_DATA_DIR=str(tmp_path / "var"),
        SEALFLOW_KEYS_DIR=str(tmp_path / "var" / "keys"),
        SEALFLOW_WORKER_HEALTH_PORT="0",
        SEALFLOW_PARSER_HEALTH_PORT="0",
        SEALFLOW_AUDIT_HEALTH_PORT="0",
        SEALFLOW_AUDIT_API_PORT=str(audit_port),
        SEALFLOW_AUDIT_URL=f"http://127.0.0.1:{audit_port}",
        SEALFLOW_IDENTITY_PORT="0",
        SEALFLOW_IDENTITY_HEALTH_PORT="0",
        SEALFLOW_GATEWAY_PORT="0",
        SEALFLOW_GATEWAY_HEALTH_PORT="0",
        SEALFLOW_CHECKPOINT_EVERY="3",
        SEALFLOW_SHUTDOWN_GRACE="20",
        NO_COLOR="1",
    )
    return env


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


class Daemon:
    """A daemon subprocess whose output is collected, with a wait for a given log line."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sealflow", *args],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()

    def wait_for(self, text: str, count: int = 1, timeout: float = 60) -> None:
        with self._changed:
            ok = self._changed.wait_for(
                lambda: sum(text in line for line in self.lines) >= count, timeout
            )
        assert ok, f"never saw {text!r} x{count}:\n" + "".join(self.lines[-40:])

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 60) -> int:
        self.process.send_signal(signum)
        code = self.process.wait(timeout)
        self._reader.join(5)
        return code


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for daemon in started:
        if daemon.process.poll() is None:
            daemon.process.kill()
            daemon.process.wait(10)


def test_sealflow_up_runs_a_document_to_done_with_an_audit_trail(
    sealflow_env: dict[str, str], daemons: list[Daemon]
) -> None:
    up = Daemon(sealflow_env, "up", "--no-start-broker")
    daemons.append(up)
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
    assert up.stop(signal.SIGINT) == 0
    verify = sealflow(sealflow_env, "audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "intact" in verify.stdout


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_daemon_serves_health_readiness_and_metrics(
    sealflow_env: dict[str, str], daemons: list[Daemon]
) -> None:
    import urllib.request

    port = _free_port()
    env = {**sealflow_env, "SEALFLOW_PARSER_HEALTH_PORT": str(port)}
    subprocess.run(
        [sys.executable, "-m", "sealflow", "keys", "init"],
        env=env,
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    parser = Daemon(env, "parser")
    daemons.append(parser)
    parser.wait_for("daemon.ready")

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
    assert parser.stop(signal.SIGTERM) == 0


def test_sigterm_during_work_loses_nothing(
    sealflow_env: dict[str, str], daemons: list[Daemon], tmp_path: Path
) -> None:
    daemons.append(Daemon(sealflow_env, "audit"))
    daemons.append(Daemon(sealflow_env, "parser"))
    subprocess.run(
        [sys.executable, "-m", "sealflow", "keys", "init"],
        env=sealflow_env,
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    worker = Daemon(sealflow_env, "worker")
    daemons.append(worker)
    for daemon in daemons:
        daemon.wait_for("daemon.ready")

    files = []
    for i in range(12):
        path = tmp_path / f"doc-{i}.txt"
        path.write_text(f"document number {i}\n" * 50)
        files.append(str(path))
    submitted = sealflow(sealflow_env, "submit", *files)
    assert submitted.returncode == 0, submitted.stderr
    worker.wait_for("message.handled")  # SIGTERM lands while the rest of the jobs are queued
    assert worker.stop(signal.SIGTERM) == 0
    assert any("daemon.stopping" in line for line in worker.lines)
    handled = [json.loads(line) for line in worker.lines if '"message.handled"' in line]
    assert handled, "the worker logged no handled message"
    for field in ("service", "job", "jti", "trace", "timestamp", "level"):
        assert handled[0].get(field), (field, handled[0])
    assert handled[0]["service"] == "worker"

    restarted = Daemon(sealflow_env, "worker")
    daemons.append(restarted)
    restarted.wait_for("daemon.ready")
    started = next(json.loads(line) for line in restarted.lines if '"runtime.started"' in line)
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
