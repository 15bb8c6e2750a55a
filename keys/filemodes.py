"""Private files and directories (0600 / 0700) for keys and data, whatever the process umask.

Every daemon writes documents, results, journals and logs under ``SEALFLOW_DATA_DIR``; none of
it is for other users of the host. The ``sealflow`` entry point sets :data:`PRIVATE_UMASK`
once, and each writer also sets its modes explicitly, so a library caller with umask 000 is
covered too.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Final

__all__ = [
    "PRIVATE_DIR_MODE",
    "PRIVATE_FILE_MODE",
    "PRIVATE_UMASK",
    "open_private",
    "private_database",
    "private_dir",
    "restrict_umask",
]

PRIVATE_DIR_MODE: Final = 0o700
PRIVATE_FILE_MODE: Final = 0o600
PRIVATE_UMASK: Final = 0o077

_NOFOLLOW: Final = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC: Final = getattr(os, "O_CLOEXEC", 0)


def restrict_umask() -> int:
    """Make every file this process creates private to its user; returns the previous umask."""
    return os.umask(PRIVATE_UMASK)


def _tighten(path: Path, mode: int) -> None:
    """Give ``path`` exactly ``mode`` when it has more, if this user owns it (else leave it)."""
    info = path.lstat()
    if stat.S_IMODE(info.st_mode) != mode and info.st_uid == os.geteuid():
        os.chmod(path, mode, follow_symlinks=False)


def private_dir(path: Path) -> Path:
    """``path`` as a directory of mode 0700, with every missing parent made 0700 too.

    An existing directory this user owns is tightened to 0700 (an older install made ``var/``
    0755); one owned by someone else is left as it is.
    """
    missing: list[Path] = []
    current = Path(path)
    while not current.is_dir():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:
            if not directory.is_dir():
                raise
        _tighten(directory, PRIVATE_DIR_MODE)
    _tighten(Path(path), PRIVATE_DIR_MODE)
    return Path(path)


def open_private(path: Path, flags: int) -> int:
    """``os.open`` of ``path`` creating it 0600 if missing; an existing file is made 0600 too."""
    fd = os.open(path, flags | os.O_CREAT | _NOFOLLOW | _CLOEXEC, PRIVATE_FILE_MODE)
    try:
        info = os.fstat(fd)
        if stat.S_IMODE(info.st_mode) != PRIVATE_FILE_MODE and info.st_uid == os.geteuid():
            os.fchmod(fd, PRIVATE_FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def private_database(path: Path) -> Path:
    """A SQLite database file made 0600 in a 0700 directory before SQLite opens it.

    SQLite gives the ``-wal`` and ``-shm`` files it creates the database file's mode; ones left
    by an older run are tightened too. An existing file is only ever chmod-ed by path, never
    opened: closing *any* descriptor of a file drops every POSIX lock this process holds on
    it, and SQLite's locks are how it knows another connection still uses the WAL. A process
    that opened and closed the file beside a live connection let the next process to close its
    last connection delete the WAL under it (commits of one process invisible to the other).
    """
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o600)
    except FileExistsError:
        _tighten(path, PRIVATE_FILE_MODE)  # someone made it first: no SQLite lock of ours on it
    else:
        os.close(fd)  # new, so no connection of this process can hold a lock on it yet
        os.chmod(path, PRIVATE_FILE_MODE, follow_symlinks=False)  # whatever the umask
    for suffix in ("-wal", "-shm", "-journal"):
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            _tighten(companion, PRIVATE_FILE_MODE)
    return path
