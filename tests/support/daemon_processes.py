"""Daemons as real subprocesses: start, wait on a log event, SIGKILL, restart, stop, RSS.

One harness for the tests (``tests/faults``, ``tests/e2e``, ``tests/soak``) and the benchmarks
(``bench/soak.py``, ``bench/e2e.py``, which put ``tests/support`` on their path). A daemon is
``python -m sealflow <args>`` (the production entry point) or, for the bench-only unsealed
variant, ``python bench/unsealed.py <service>``. A reader thread follows its output (structlog
JSON; ``sealflow up`` prefixes each line with the daemon's name) and keeps each line with the
time it arrived, so a caller waits on a log event, never on a clock. ``history`` bounds what
is kept, so a 10,000-job soak holds no whole log in memory.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "PIPELINE_DAEMONS",
    "REPO",
    "DaemonProcess",
    "Daemons",
    "LogLine",
    "daemon_env",
]

REPO = Path(__file__).resolve().parents[2]
PIPELINE_DAEMONS = ("audit", "parser", "worker")
"""The consuming daemons, in the order they start (the audit first: it records the others)."""
_STOP_ORDER = ("worker", "parser", "audit")
"""SIGTERM order: the worker first, so it finishes what it holds while the rest still run."""


def daemon_env(
    amqp_url: str, namespace: str, data_dir: Path, keys_dir: Path, **extra: str
) -> dict[str, str]:
    """The environment of every daemon of one run: its broker namespace, data and keys
    directories, health ports the OS picks, no audit query API (a test that wants it names its
    port); ``extra`` adds or replaces ``SEALFLOW_*`` settings."""
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
        SEALFLOW_PARSER_TIMEOUT_SECONDS="15",
        PYTHONUNBUFFERED="1",
        NO_COLOR="1",
    )
    env.update(extra)
    return env


def _fields(text: str) -> dict[str, Any]:
    """The JSON object a log line carries (after a ``sealflow up`` prefix), else ``{}``."""
    start = text.find("{")
    if start < 0:
        return {}
    try:
        parsed = json.loads(text[start:])
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line a daemon wrote: its position, the wall-clock time it arrived, its JSON."""

    index: int
    at: float
    text: str
    fields: dict[str, Any]

    @property
    def event(self) -> str | None:
        """The structlog ``event`` of the line, if it has one."""
        value = self.fields.get("event")
        return value if isinstance(value, str) else None


class DaemonProcess:
    """One daemon subprocess whose output is followed line by line."""

    def __init__(
        self,
        args: Sequence[str],
        env: Mapping[str, str],
        *,
        unsealed: bool = False,
        history: int | None = None,
        prefix: Sequence[str] = (),
        name: str | None = None,
    ) -> None:
        """Start the daemon ``args``, its command line after ``prefix`` (e.g. ``ip netns exec
        NS`` to run it on another host); ``name`` (default ``args[0]``) labels its output."""
        self.name = name if name is not None else args[0]
        self.history = history
        self.lines: collections.deque[LogLine] = collections.deque(maxlen=history)
        self._matches: dict[str, collections.deque[LogLine]] = {}
        self._received = 0
        self._eof = False
        self._changed = threading.Condition()
        command = (
            [sys.executable, str(REPO / "bench" / "unsealed.py"), *args]
            if unsealed
            else [sys.executable, "-m", "sealflow", *args]
        )
        self.process = subprocess.Popen(
            [*prefix, *command],
            env=dict(env),
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, name=f"log-{self.name}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        """The reader thread: every line, parsed, kept (within ``history``), waiters woken."""
        assert self.process.stdout is not None
        for text in self.process.stdout:
            fields = _fields(text)
            with self._changed:
                line = LogLine(self._received, time.time(), text, fields)
                self._received += 1
                self.lines.append(line)
                if line.event is not None:
                    matches = self._matches.get(line.event)
                    if matches is None:
                        matches = self._matches[line.event] = collections.deque(maxlen=self.history)
                    matches.append(line)
                self._changed.notify_all()
        with self._changed:
            self._eof = True
            self._changed.notify_all()

    @property
    def pid(self) -> int:
        """The process id."""
        return self.process.pid

    def mark(self) -> int:
        """A position in the output: ``since=`` it, only later lines count."""
        with self._changed:
            return self._received

    def _found(self, event: str, since: int) -> list[LogLine]:
        """The kept ``event`` lines at or after ``since`` (the caller holds the lock)."""
        return [line for line in self._matches.get(event, ()) if line.index >= since]

    def count(self, event: str, since: int = 0) -> int:
        """How many ``event`` lines arrived at or after position ``since``."""
        with self._changed:
            return len(self._found(event, since))

    def events(self, event: str) -> list[LogLine]:
        """The ``event`` lines kept so far."""
        with self._changed:
            return list(self._matches.get(event, ()))

    def wait_for(
        self, event: str, *, count: int = 1, since: int = 0, timeout: float = 60
    ) -> LogLine:
        """The ``count``-th ``event`` line after ``since``; fails with the output's tail as soon
        as the process has ended without it (``timeout`` only bounds a hung daemon)."""
        if self.history is not None and count > self.history:
            raise ValueError(f"count {count} exceeds the {self.history} lines kept per event")
        with self._changed:
            self._changed.wait_for(
                lambda: (
                    len(self._found(event, since)) >= count
                    or self._eof
                    or self.process.poll() is not None
                ),
                timeout,
            )
            matches = self._found(event, since)
        if len(matches) < count and self.process.poll() is not None:
            self._reader.join(5)  # read what it wrote before it ended
            with self._changed:
                matches = self._found(event, since)
        if len(matches) < count:
            raise AssertionError(
                f"{self.name} never logged {event!r} x{count} (exit {self.process.poll()}):\n"
                + self.tail()
            )
        return matches[count - 1]

    def wait_ready(self, timeout: float = 90) -> LogLine:
        """Connected, topology declared, consuming: its ``daemon.ready`` line."""
        return self.wait_for("daemon.ready", timeout=timeout)

    def tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of output, for a failure message."""
        with self._changed:
            return "".join(line.text for line in list(self.lines)[-lines:])

    def kill(self) -> None:
        """SIGKILL the daemon and its children: no clean-up, no flush, no acks."""
        children = _children(self.process.pid)
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)
        for child in children:  # the parser's sandboxed process would otherwise linger
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                continue
        self._reader.join(10)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 60) -> int:
        """``signum`` (SIGTERM: the clean shutdown) and the exit code; -9 if it had to be killed."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                return -9
        self._reader.join(10)
        return self.process.returncode

    def rss(self) -> int:
        """Resident set size in bytes of the daemon and its children (the parser's sandbox)."""
        return sum(_rss(pid) for pid in (self.process.pid, *_children(self.process.pid)))


def _rss(pid: int) -> int:
    """VmRSS of ``pid`` in bytes (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return 0
    return 0


def _children(pid: int) -> list[int]:
    """The direct children of ``pid``, from /proc."""
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
    """The daemons of one run, started, killed and stopped by name (safe across threads)."""

    env: Mapping[str, str]
    unsealed: bool = False
    history: int | None = None
    running: dict[str, DaemonProcess] = field(default_factory=dict)
    exited: list[DaemonProcess] = field(default_factory=list)
    incarnations: collections.Counter[str] = field(default_factory=collections.Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def launch(self, *args: str) -> DaemonProcess:
        """Start ``sealflow ARGS`` (named by its first argument) without waiting for it."""
        with self._lock:
            if args[0] in self.running:
                raise RuntimeError(f"{args[0]} is already running")
            daemon = DaemonProcess(args, self.env, unsealed=self.unsealed, history=self.history)
            self.running[args[0]] = daemon
            self.incarnations[args[0]] += 1
        return daemon

    def start(self, *names: str, wait: bool = True, timeout: float = 90) -> list[DaemonProcess]:
        """Start the daemons ``names`` together and (``wait``) until each is ready."""
        started = [self.launch(name) for name in names]
        if wait:
            for daemon in started:
                daemon.wait_ready(timeout)
        return started

    def __getitem__(self, name: str) -> DaemonProcess:
        """The running daemon ``name``."""
        with self._lock:
            return self.running[name]

    def _retire(self, name: str) -> DaemonProcess:
        """Move ``name`` from the running daemons to the exited ones."""
        with self._lock:
            daemon = self.running.pop(name)
            self.exited.append(daemon)
        return daemon

    def kill(self, name: str) -> DaemonProcess:
        """SIGKILL ``name`` (and its children); start it again with :meth:`start`."""
        daemon = self._retire(name)
        daemon.kill()
        return daemon

    def stop(self, name: str, signum: int = signal.SIGTERM) -> int:
        """Stop ``name`` cleanly; its exit code."""
        return self._retire(name).stop(signum)

    def stop_all(self) -> dict[str, int]:
        """Stop every running daemon, the worker first; their exit codes."""
        with self._lock:
            names = sorted(
                self.running,
                key=lambda n: _STOP_ORDER.index(n) if n in _STOP_ORDER else len(_STOP_ORDER),
            )
        return {name: self.stop(name) for name in names}

    def ended(self) -> list[str]:
        """The daemons that should be running but whose process has ended."""
        with self._lock:
            return [n for n, d in self.running.items() if d.process.poll() is not None]

    def rss(self) -> dict[str, tuple[int, int]]:
        """``(rss bytes, incarnation)`` of each live daemon."""
        with self._lock:
            live = [(n, d) for n, d in self.running.items() if d.process.poll() is None]
            incarnations = dict(self.incarnations)
        return {name: (daemon.rss(), incarnations[name]) for name, daemon in live}

    def kill_leftovers(self) -> None:
        """SIGKILL whatever still runs (a fixture's clean-up after a failed test)."""
        with self._lock:
            every = [*self.running.values(), *self.exited]
            self.running.clear()
        for daemon in every:
            if daemon.process.poll() is None:
                daemon.kill()
