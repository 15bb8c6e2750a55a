"""What a sandbox process gives up before it reads its first document, and what is left.

In order: every inherited file descriptor but the pipe to the parent (stdio goes to
``/dev/null``); its working directory (a removed, empty one); the network (a network namespace
of its own, where the kernel allows it); root (it becomes ``user``, ``nobody`` by default, when
started as root); every file access and TCP connection (Landlock, where the kernel has it); and
processes, file writes, open files, memory, CPU and core dumps (resource limits).
"""

from __future__ import annotations

import ctypes
import os
import pwd
import resource
import signal
import tempfile
from dataclasses import dataclass
from typing import Final

from parser.landlock import LandlockUnavailable, forbid_files_and_tcp, set_no_new_privs
from parser.limits import ParseLimits

__all__ = ["Confinement", "SandboxRefused", "confine"]

_CLONE_NEWNET: Final = 0x40000000
_CLONE_NEWUSER: Final = 0x10000000
_SPARE_FDS: Final = 4
"""Descriptors a parse may open beyond those it holds (none are needed: no files, no sockets)."""


class SandboxRefused(Exception):
    """The sandbox cannot be set up as required (e.g. the configured user is root or unknown)."""


@dataclass(frozen=True, slots=True)
class Confinement:
    """What one sandbox achieved, each part said in words for the parent's log."""

    user: str
    files: str
    network: str
    complete: bool
    """Whether nothing is left open: another user, no file access and no network."""


def confine(limits: ParseLimits, *, user: str, keep_fd: int) -> Confinement:
    """Confine the calling process for good; raises :class:`SandboxRefused` or ``OSError``."""
    root = os.geteuid() == 0
    _close_inherited_fds(keep_fd)
    _enter_empty_directory()
    network, network_cut = _leave_the_network(root)
    user_said, user_dropped = _drop_root(user) if root else ("unchanged: not started as root", True)
    try:
        abi = forbid_files_and_tcp()
    except LandlockUnavailable as error:
        set_no_new_privs()
        files, files_closed = f"by permissions only (no Landlock: {error})", False
    else:
        files, files_closed = f"none (Landlock ABI {abi})", True
        if not network_cut and abi >= 4:
            network += "; TCP connect and bind forbidden by Landlock, UDP and UNIX sockets open"
    _limit_resources(limits, keep_fd)
    return Confinement(
        user=user_said,
        files=files,
        network=network,
        complete=user_dropped and files_closed and network_cut,
    )


def _close_inherited_fds(keep_fd: int) -> None:
    """Point stdio at ``/dev/null`` and close every other descriptor but ``keep_fd``."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        if fd != null:
            os.dup2(null, fd)
    if null > 2:
        os.close(null)
    os.closerange(3, keep_fd)
    os.closerange(keep_fd + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[0])


def _enter_empty_directory() -> None:
    """Work in a directory that is removed at once: no relative path leads anywhere."""
    empty = tempfile.mkdtemp(prefix="sealflow-sandbox-")
    os.chdir(empty)
    os.rmdir(empty)


def _leave_the_network(root: bool) -> tuple[str, bool]:
    """A network namespace of its own (only a downed loopback); as non-root, with a user one."""
    flags = _CLONE_NEWNET if root else _CLONE_NEWUSER | _CLONE_NEWNET
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(flags) == 0:
        return "cut (a network namespace of its own)", True
    reason = os.strerror(ctypes.get_errno())
    return f"open: the kernel refused a network namespace ({reason})", False


def _drop_root(user: str) -> tuple[str, bool]:
    """Become ``user`` with no supplementary groups (the caller is root)."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError as error:
        raise SandboxRefused(f"sandbox user {user!r} does not exist") from error
    if entry.pw_uid == 0 or entry.pw_gid == 0:
        raise SandboxRefused(f"sandbox user {user!r} is root or in group root")
    os.setgroups([])
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
    if os.getuid() == 0 or os.geteuid() == 0:
        raise SandboxRefused("the sandbox is still root after setuid")
    return f"{user} (uid {entry.pw_uid})", True


def _limit_resources(limits: ParseLimits, keep_fd: int) -> None:
    """No new processes or written bytes, few descriptors, bounded memory and CPU, no core."""
    _set(resource.RLIMIT_NPROC, 0)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    _set(resource.RLIMIT_FSIZE, 0)
    _set(resource.RLIMIT_NOFILE, keep_fd + 1 + _SPARE_FDS)
    _set(resource.RLIMIT_AS, limits.memory_bytes)
    _set(resource.RLIMIT_CORE, 0)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = int(usage.ru_utime + usage.ru_stime) + 1 + limits.sandbox_cpu_seconds
    _set(resource.RLIMIT_CPU, cpu)


def _set(which: int, value: int) -> None:
    """Set soft and hard limit to ``value``, or keep a lower hard limit already in place."""
    _, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value))
