"""The pipeline's daemons as real subprocesses: start, wait until ready, SIGKILL, restart, RSS.

Shared by the soak (``bench/soak.py``, ``tests/soak/``) and the end-to-end benchmark
(``bench/e2e.py``). Each daemon is ``python -m sealflow <service>`` (the production entry
point) or, for the bench-only unsealed variant, ``python bench/unsealed.py <service>``. A
reader thread follows the daemon's log (structlog JSON on stderr) and keeps only counts of the
lines waited on and the last lines for diagnostics, so a 10,000-job run holds no log in memory.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SERVICES = ("audit", "parser", "worker")
_MARKERS = ("daemon.ready", "runtime.started", "connection.reconnected", "consumer.started")


def daemon_env(
    amqp_url: str, namespace: str, data_dir: Path, keys_dir: Path, **extra: str
) -> dict[str, str]:
    """The environment of every daemon: one broker namespace, one data and keys directory."""
    env = dict(os.environ)
    env.update(
        SEALFLOW_AMQP_URL=amqp_url,
        SEALFLOW_NAMESPACE=namespace,
        SEALFLOW_DATA_DIR=str(data_dir),
        SEALFLOW_KEYS_DIR=str(keys_dir),
        SEALFLOW_WORKER_HEALTH_PORT="0",
        SEALFLOW_PARSER_HEALTH_PORT="0",
        SEALFLOW_AUDIT_HEALTH_PORT="0",
        SEALFLOW_AUDIT_API_PORT="0",
        SEALFLOW_SHUTDOWN_GRACE="15",
        SEALFLOW_RETRY_BASE_DELAY="0.1",
        SEALFLOW_PARSER_TIMEOUT_SECONDS="15",
        PYTHONUNBUFFERED="1",
        NO_COLOR="1",
    )
    env.update(extra)
    return env


def _command(service: str, unsealed: bool) -> list[str]:
    if unsealed:
        return [sys.executable, str(REPO / "bench" / "unsealed.py"), service]
    return [sys.executable, "-m", "sealflow", service]


@dataclass
class Daemon:
    """One daemon subprocess; ``restart`` keeps the same command and environment."""

    service: str
    env: Mapping[str, str]
    unsealed: bool = False
    process: subprocess.Popen[str] | None = None
    incarnation: int = 0
    last_lines: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=60))
    _counts: collections.Counter[str] = field(default_factory=collections.Counter)
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _reader: threading.Thread | None = None

    def start(self, ready_timeout: float = 90) -> None:
        """Start the process and wait for its ``daemon.ready`` line."""
        with self._changed:
            self._counts.clear()
            self.last_lines.clear()
        self.process = subprocess.Popen(
            _command(self.service, self.unsealed),
            env=dict(self.env),
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.incarnation += 1
        self._reader = threading.Thread(
            target=self._read, args=(self.process,), daemon=True, name=f"log-{self.service}"
        )
        self._reader.start()
        self.wait_for("daemon.ready", timeout=ready_timeout)

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            with self._changed:
                if process is self.process:
                    self.last_lines.append(line)
                    for marker in _MARKERS:
                        if marker in line:
                            self._counts[marker] += 1
                    self._changed.notify_all()

    def count(self, marker: str) -> int:
        """How many log lines of this incarnation contained ``marker`` (one of ``_MARKERS``)."""
        with self._changed:
            return self._counts[marker]

    def wait_for(self, marker: str, count: int = 1, timeout: float = 60) -> None:
        """Block until ``marker`` was logged ``count`` times by this incarnation, or fail."""
        with self._changed:
            ok = self._changed.wait_for(
                lambda: (
                    self._counts[marker] >= count
                    or (self.process is not None and self.process.poll() is not None)
                ),
                timeout,
            )
            reached = self._counts[marker] >= count
        if not (ok and reached):
            raise RuntimeError(
                f"{self.service} never logged {marker!r} x{count}:\n" + "".join(self.last_lines)
            )

    @property
    def pid(self) -> int:
        """The process id of the running incarnation."""
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL: no clean-up, no flush, exactly what a crash does."""
        assert self.process is not None
        children = _children(self.process.pid)
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)
        for child in children:  # the parser's sandboxed process would otherwise linger
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                continue
        if self._reader is not None:
            self._reader.join(10)

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM and wait: the daemon's clean shutdown. Returns its exit code."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process is not None else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return -9
        if self._reader is not None:
            self._reader.join(10)
        return code

    def rss(self) -> int:
        """Resident set size in bytes of the daemon and its child processes (the parser's)."""
        assert self.process is not None
        return sum(_rss(pid) for pid in (self.process.pid, *_children(self.process.pid)))


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return 0
    return 0


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return found


@dataclass
class Daemons:
    """The three consuming daemons of one pipeline."""

    members: dict[str, Daemon]

    @classmethod
    def start_all(cls, env: Mapping[str, str], *, unsealed: bool = False) -> Daemons:
        """Start audit, parser and worker (in that order) and wait until each is ready."""
        started = cls({})
        try:
            for service in SERVICES:
                daemon = Daemon(service, env, unsealed=unsealed)
                started.members[service] = daemon
                daemon.start()
        except BaseException:
            started.stop_all()
            raise
        return started

    def __getitem__(self, service: str) -> Daemon:
        return self.members[service]

    def rss(self) -> dict[str, int]:
        """RSS in bytes of each daemon (with its children)."""
        return {name: daemon.rss() for name, daemon in self.members.items()}

    def stop_all(self) -> dict[str, int]:
        """SIGTERM every daemon (worker first, so it finishes what it holds); exit codes."""
        codes: dict[str, int] = {}
        for service in reversed(SERVICES):
            daemon = self.members.get(service)
            if daemon is not None and daemon.process is not None:
                codes[service] = daemon.stop()
        return codes
