"""Parse functions that attack the sandbox they run in, for ``tests/parser/test_sandbox.py``.

They live here, on the test path, because a spawned sandbox imports its parse function by
name. Each takes what ``parse_bytes`` takes, tries one thing, and returns a document whose
text says how it went: ``done …`` when the attack worked, ``refused …`` when it did not.
The argument ``filename`` carries the attack's target (a path, a port).
"""

from __future__ import annotations

import os
import signal
import socket
import time

from parser import ParsedDocument, ParseLimits

__all__ = [
    "burn_cpu",
    "burn_two_cpu_seconds",
    "connect_to",
    "fork",
    "open_many_files",
    "read_file",
    "report_identity",
    "write_big_file",
]


def _said(text: str) -> ParsedDocument:
    return ParsedDocument(text=text, metadata={}, chunks=(), pages=None, parser="text")


def fork(data: bytes, content_type: str, filename: str, limits: ParseLimits) -> ParsedDocument:
    """Start a child process."""
    try:
        pid = os.fork()
    except OSError as error:
        return _said(f"refused {error.errno}")
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return _said("done")


def write_big_file(
    data: bytes, content_type: str, filename: str, limits: ParseLimits
) -> ParsedDocument:
    """Write 8 MiB to the file ``filename``."""
    try:
        with open(filename, "wb") as out:
            out.write(b"x" * (8 << 20))
    except OSError as error:
        return _said(f"refused {error.errno}")
    return _said("done")


def open_many_files(
    data: bytes, content_type: str, filename: str, limits: ParseLimits
) -> ParsedDocument:
    """Open pipes until the kernel says no (at most 1,000 of them)."""
    held: list[int] = []
    try:
        while len(held) < 1000:
            held.extend(os.pipe())
    except OSError as error:
        return _said(f"refused {error.errno} after {len(held)}")
    finally:
        for fd in held:
            os.close(fd)
    return _said(f"done {len(held)}")


def burn_cpu(data: bytes, content_type: str, filename: str, limits: ParseLimits) -> ParsedDocument:
    """Ignore the kernel's CPU warning and spin for ever."""
    signal.signal(signal.SIGXCPU, signal.SIG_IGN)
    while True:
        pass


def burn_two_cpu_seconds(
    data: bytes, content_type: str, filename: str, limits: ParseLimits
) -> ParsedDocument:
    """Spin until this process has used two more seconds of CPU, then answer."""
    until = time.process_time() + 2
    while time.process_time() < until:
        pass
    return _said("done")


def read_file(data: bytes, content_type: str, filename: str, limits: ParseLimits) -> ParsedDocument:
    """Read the file ``filename``."""
    try:
        with open(filename, "rb") as source:
            return _said(f"done {len(source.read())}")
    except OSError as error:
        return _said(f"refused {error.errno}")


def connect_to(
    data: bytes, content_type: str, filename: str, limits: ParseLimits
) -> ParsedDocument:
    """Open a TCP connection to ``127.0.0.1:<filename>``."""
    try:
        with socket.create_connection(("127.0.0.1", int(filename)), timeout=5):
            return _said("done")
    except OSError as error:
        return _said(f"refused {error.errno}")


def report_identity(
    data: bytes, content_type: str, filename: str, limits: ParseLimits
) -> ParsedDocument:
    """Say which user, groups, directory and descriptors the sandbox has."""
    try:
        cwd = os.getcwd()
    except OSError as error:
        cwd = f"refused {error.errno}"
    fds = [fd for fd in range(256) if _is_open(fd)]
    return _said(f"{os.getuid()}|{os.getgid()}|{os.getgroups()}|{cwd!r}|{fds}")


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True
