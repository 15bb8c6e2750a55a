"""Several hosts on one machine for the multi-host tests: Linux network namespaces on a bridge.

Each :class:`Host` is a network namespace with its own address on a private bridge made by the
test (``10.231.X.0/24``, the root namespace at ``.1``), its own loopback, and its own directory
for data and keys. RabbitMQ and PostgreSQL stay in the root namespace listening on 127.0.0.1
only; a :class:`Forwarder` started by the test relays the bridge address's ports to them, so the
machine's services are neither reconfigured nor exposed. Everything is removed on close.
Needs root (CI runs as root) and iproute2.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from daemon_processes import DaemonProcess

__all__ = [
    "Forwarder",
    "Host",
    "Network",
    "netns_available",
    "private_key_files",
    "relayed",
    "scoped_env",
]

_IP_TIMEOUT = 30


def netns_available() -> str | None:
    """Why namespaces cannot be made here, or ``None`` when they can."""
    if os.geteuid() != 0:
        return "the multi-host tests make network namespaces and need root"
    if shutil.which("ip") is None:
        return "the multi-host tests need iproute2 (`ip`)"
    return None


def _ip(*args: str, netns: str | None = None) -> None:
    prefix = ["ip", "netns", "exec", netns] if netns else []
    subprocess.run([*prefix, "ip", *args], check=True, capture_output=True, timeout=_IP_TIMEOUT)


@dataclass
class Host:
    """One namespace: its name, address and directory (``data/`` and ``keys/`` below it)."""

    name: str
    netns: str
    address: str
    root: Path

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside this host's namespace."""
        return ["ip", "netns", "exec", self.netns, *argv]

    def sealflow(self, *args: str) -> list[str]:
        """The ``sealflow`` command line ``args`` run inside this host's namespace."""
        return self.command([sys.executable, "-m", "sealflow", *args])

    def daemon(self, name: str, env: dict[str, str]) -> DaemonProcess:
        """``sealflow <name>`` started on this host, its JSON log collected (see faults_testing)."""
        return DaemonProcess([name], env, prefix=self.command([]), name=f"{self.name}:{name}")

    def run(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` to its end inside the namespace; output captured, exit code not checked."""
        return subprocess.run(
            self.command(argv),
            env=dict(env) if env is not None else None,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@dataclass
class Network:
    """A bridge and the hosts on it; use as a context manager (or call :meth:`close`)."""

    root: Path
    tag: str = field(default_factory=lambda: secrets.token_hex(3))
    subnet: int = field(default_factory=lambda: 100 + secrets.randbelow(150))
    hosts: dict[str, Host] = field(default_factory=dict)
    _made: bool = False

    @property
    def bridge(self) -> str:
        return f"sfbr{self.tag}"

    @property
    def root_address(self) -> str:
        """The root namespace's address on the bridge: where the forwarders listen."""
        return f"10.231.{self.subnet}.1"

    def __enter__(self) -> Network:
        _ip("link", "add", self.bridge, "type", "bridge")
        self._made = True
        _ip("addr", "add", f"{self.root_address}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_host(self, name: str) -> Host:
        """A new namespace on the bridge at the next address, with ``lo`` up."""
        index = len(self.hosts) + 10
        netns = f"sf{self.tag}{name.lower()}"
        outside, inside = f"sfv{self.tag}{index}", f"sfp{self.tag}{index}"
        host = Host(name, netns, f"10.231.{self.subnet}.{index}", self.root / name)
        subprocess.run(["ip", "netns", "add", netns], check=True, capture_output=True, timeout=30)
        self.hosts[name] = host
        _ip("link", "set", "lo", "up", netns=netns)
        _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        _ip("link", "set", outside, "master", self.bridge)
        _ip("link", "set", outside, "up")
        _ip("link", "set", inside, "netns", netns)
        _ip("addr", "add", f"{host.address}/24", "dev", inside, netns=netns)
        _ip("link", "set", inside, "up", netns=netns)
        host.data_dir.mkdir(parents=True, mode=0o700)
        host.keys_dir.mkdir(parents=True, mode=0o700)
        return host

    def close(self) -> None:
        """Delete every namespace (their veth ends go with them) and the bridge."""
        for host in self.hosts.values():
            subprocess.run(["ip", "netns", "del", host.netns], capture_output=True, timeout=30)
        self.hosts.clear()
        if self._made:
            subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, timeout=30)
            self._made = False


class Forwarder:
    """TCP relays from ``listen_host:port`` to ``127.0.0.1:port``, in a thread of their own.

    The hosts reach the root namespace's loopback-only RabbitMQ and PostgreSQL this way; both
    see connections from 127.0.0.1, as when they run on one machine.
    """

    def __init__(self, listen_host: str, ports: Mapping[int, int]) -> None:
        """``ports`` maps a port on ``listen_host`` to a port on 127.0.0.1."""
        self.listen_host = listen_host
        self.ports = dict(ports)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._servers: list[asyncio.Server] = []

    def __enter__(self) -> Forwarder:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _start(self) -> None:
        for listen_port, target_port in self.ports.items():
            server = await asyncio.start_server(
                lambda r, w, port=target_port: self._relay(r, w, port),
                self.listen_host,
                listen_port,
            )
            self._servers.append(server)

    async def _stop(self) -> None:
        for server in self._servers:
            server.close()
            await server.wait_closed()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _relay(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int
    ) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            _pipe(reader, upstream_writer), _pipe(upstream_reader, writer), return_exceptions=True
        )


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until EOF, then half-close; a reset on either side ends the relay (that is how a
    killed daemon's connection ends, not an error of the relay)."""
    with contextlib.suppress(ConnectionError, OSError):
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    with contextlib.suppress(ConnectionError, OSError):
        writer.close()


def relayed(url: str, address: str) -> str:
    """``url`` (a service on the root's loopback) as a host reaches it: through the relay on
    the bridge ``address``, same port, user and path."""
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@" if credentials else ""
    port = f":{parts.port}" if parts.port else ""
    return parts._replace(netloc=f"{netloc}{address}{port}").geturl()


def private_key_files(root: Path) -> Iterator[Path]:
    """Every file under ``root`` that holds a PEM private key."""
    for path in sorted(root.rglob("*")):
        if path.is_file() and b"PRIVATE KEY-----" in path.read_bytes():
            yield path


def scoped_env(base: Mapping[str, str], **settings: str) -> dict[str, str]:
    """``base`` without any inherited ``SEALFLOW_*`` value, plus ``settings``."""
    clean = {k: v for k, v in base.items() if not k.startswith("SEALFLOW_")}
    return clean | settings
