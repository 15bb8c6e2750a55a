"""A throw-away RabbitMQ cluster on this machine: N nodes with their own names, ports, data
directories and Erlang cookie, started and stopped by the test that uses it.

The nodes are the machine's RabbitMQ installation run directly (``/usr/lib/rabbitmq/bin``), as
the test's own user, with ``HOME`` in the cluster's directory so that their cookie is theirs:
the machine's own broker (``rabbit@…`` on 5672) is neither joined nor touched.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["RabbitCluster", "RabbitNode", "rabbit_bin"]

_BOOT_SECONDS = 120


def rabbit_bin(name: str) -> Path | None:
    """The unwrapped RabbitMQ script ``name`` (Debian's wrappers would switch to the rabbitmq
    user and its cookie), or ``None`` where RabbitMQ is not installed that way."""
    for folder in (Path("/usr/lib/rabbitmq/bin"), Path("/usr/local/lib/rabbitmq/bin")):
        if (folder / name).is_file():
            return folder / name
    found = shutil.which(name)
    return Path(found) if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RabbitNode:
    """One node: its Erlang name, AMQP port and directory."""

    name: str
    amqp_port: int
    dist_port: int
    directory: Path

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/"


@dataclass
class RabbitCluster:
    """``size`` nodes clustered with the first; :meth:`start` boots them, :meth:`stop` ends
    every one (also those a test stopped itself) and leaves nothing running."""

    root: Path
    size: int = 3
    nodes: list[RabbitNode] = field(default_factory=list)
    stopped: set[str] = field(default_factory=set)

    def _env(self, node: RabbitNode) -> dict[str, str]:
        return os.environ | {
            "HOME": str(self.root),
            "RABBITMQ_CONF_ENV_FILE": str(self.root / "rabbitmq-env.conf"),
            "RABBITMQ_NODENAME": node.name,
            "RABBITMQ_NODE_PORT": str(node.amqp_port),
            "RABBITMQ_DIST_PORT": str(node.dist_port),
            "RABBITMQ_MNESIA_BASE": str(node.directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(node.directory / "log"),
            "RABBITMQ_CONFIG_FILE": str(node.directory / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(node.directory / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(node.directory / "rabbitmq.pid"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def ctl(self, node: RabbitNode, *args: str, timeout: float = 120) -> str:
        """``rabbitmqctl -n NODE ARGS`` with the cluster's cookie; raises on failure."""
        ctl = rabbit_bin("rabbitmqctl")
        if ctl is None:
            raise RuntimeError("rabbitmqctl is not installed")
        done = subprocess.run(
            [str(ctl), "-n", node.name, *args],
            env=self._env(node),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"rabbitmqctl {' '.join(args)} on {node.name}: {done.stderr[-2000:]}"
            )
        return done.stdout

    def start(self) -> None:
        """Boot every node and cluster it with the first; quorum queues then span all three."""
        server = rabbit_bin("rabbitmq-server")
        if server is None:
            raise RuntimeError("rabbitmq-server is not installed")
        self.root.mkdir(parents=True, exist_ok=True)
        cookie = self.root / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(20))
        cookie.chmod(0o400)
        (self.root / "rabbitmq-env.conf").write_text("")
        tag = secrets.token_hex(3)
        for n in range(1, self.size + 1):
            directory = self.root / f"node{n}"
            directory.mkdir()
            node = RabbitNode(f"sf{tag}n{n}@localhost", _free_port(), _free_port(), directory)
            (directory / "enabled_plugins").write_text("[].\n")
            (directory / "rabbitmq.conf").write_text(
                f"listeners.tcp.local = 127.0.0.1:{node.amqp_port}\n"
            )
            self.nodes.append(node)
            subprocess.run(
                [str(server), "-detached"],
                env=self._env(node),
                cwd=directory,
                check=True,
                capture_output=True,
                timeout=60,
            )
        for node in self.nodes:
            # ``wait`` waits for the pid file and then for the node to finish booting.
            pid_file = str(node.directory / "rabbitmq.pid")
            self.ctl(node, "wait", pid_file, "--timeout", str(_BOOT_SECONDS), timeout=_BOOT_SECONDS)
        first = self.nodes[0]
        for node in self.nodes[1:]:
            self.ctl(node, "stop_app")
            self.ctl(node, "join_cluster", first.name)
            self.ctl(node, "start_app")
            self.ctl(node, "await_startup", "--timeout", str(_BOOT_SECONDS), timeout=_BOOT_SECONDS)
        running = self.ctl(first, "cluster_status", "--formatter", "json")
        for node in self.nodes:
            if node.name not in running:
                raise RuntimeError(f"{node.name} did not join the cluster: {running}")

    def stop_node(self, node: RabbitNode) -> None:
        """Stop one node's Erlang VM for good (the test's fault)."""
        self.ctl(node, "stop")
        self.stopped.add(node.name)

    def stop(self) -> None:
        """Stop every node still running; the directory is the caller's to delete."""
        failures: list[str] = []
        for node in self.nodes:
            if node.name in self.stopped:
                continue
            try:
                self.ctl(node, "stop", timeout=60)
                self.stopped.add(node.name)
            except (RuntimeError, subprocess.TimeoutExpired) as error:
                failures.append(str(error))
                _kill_processes_under(node.directory)
        if failures:
            raise RuntimeError("; ".join(failures))


def _kill_processes_under(directory: Path) -> None:
    """SIGKILL every process whose command line names ``directory`` (a node that would not stop,
    or never finished booting): a test must leave no Erlang VM behind."""
    marker = str(directory).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "cmdline").read_bytes():
                os.kill(int(entry.name), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            continue
