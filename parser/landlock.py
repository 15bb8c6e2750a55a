"""Linux Landlock through ctypes: take away every file access and TCP connection at once.

Python 3.11 has no binding, so the three system calls are made directly. A process that
calls :func:`forbid_files_and_tcp` keeps the file descriptors it already holds but can open,
create, list, truncate or remove nothing any more, make no TCP connection and bind no TCP
port (ABI 4+), and send no signal to, nor reach an abstract UNIX socket of, a process
outside its domain (ABI 6+). The restriction is inherited and cannot be undone.
"""

from __future__ import annotations

import ctypes
import os
from typing import Final

__all__ = ["LandlockUnavailable", "forbid_files_and_tcp", "set_no_new_privs"]

_CREATE_RULESET: Final = 444
_RESTRICT_SELF: Final = 446
_CREATE_RULESET_VERSION: Final = 1 << 0
_PR_SET_NO_NEW_PRIVS: Final = 38

# Every filesystem right of each ABI version (linux/landlock.h): v1 has 13, v2 adds REFER,
# v3 TRUNCATE, v5 IOCTL_DEV.
_FS_RIGHTS_BY_ABI: Final = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}
_NET_BIND_AND_CONNECT_TCP: Final = 0b11
_SCOPE_ABSTRACT_UNIX_AND_SIGNAL: Final = 0b11


class LandlockUnavailable(Exception):
    """The kernel has no Landlock (too old, or the LSM is not enabled)."""


def forbid_files_and_tcp() -> int:
    """Restrict this process (and its future children) for good; returns the ABI version used.

    Raises :class:`LandlockUnavailable` when the kernel lacks Landlock, ``OSError`` when it has
    it but refuses the restriction.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    abi = int(libc.syscall(_CREATE_RULESET, None, 0, _CREATE_RULESET_VERSION))
    if abi < 1:
        raise LandlockUnavailable(os.strerror(ctypes.get_errno()))
    fs_rights = _FS_RIGHTS_BY_ABI[max(v for v in _FS_RIGHTS_BY_ABI if v <= abi)]
    # struct landlock_ruleset_attr grew with the ABI: handled_access_fs, _net (v4), scoped (v6).
    fields = [fs_rights]
    if abi >= 4:
        fields.append(_NET_BIND_AND_CONNECT_TCP)
    if abi >= 6:
        fields.append(_SCOPE_ABSTRACT_UNIX_AND_SIGNAL)
    attr = (ctypes.c_uint64 * len(fields))(*fields)
    ruleset = int(libc.syscall(_CREATE_RULESET, ctypes.byref(attr), ctypes.sizeof(attr), 0))
    if ruleset < 0:
        raise _os_error("landlock_create_ruleset")
    try:
        set_no_new_privs()
        if libc.syscall(_RESTRICT_SELF, ruleset, 0) != 0:
            raise _os_error("landlock_restrict_self")
    finally:
        os.close(ruleset)
    return abi


def set_no_new_privs() -> None:
    """Forbid this process and its children to gain privileges (set-uid files, file caps)."""
    if ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise _os_error("prctl(PR_SET_NO_NEW_PRIVS)")


def _os_error(call: str) -> OSError:
    errno = ctypes.get_errno()
    return OSError(errno, f"{call}: {os.strerror(errno)}")
