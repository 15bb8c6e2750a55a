"""Safe file operations under the keys directory: atomic replace, bounded and guarded reads."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path

from keys.errors import KeyFileError

__all__ = ["atomic_write", "create_exclusive", "fsync_directory", "read_bounded"]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def fsync_directory(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | _CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def atomic_write(path: Path, data: bytes, *, mode: int) -> None:
    """Replace ``path`` with ``data`` atomically: temp file, fsync, ``os.replace``, dir fsync."""
    done = False
    try:
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            os.fchmod(fd, mode)
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.replace(temporary, path)
            done = True
        finally:
            if not done:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temporary)
        fsync_directory(path.parent)
    except OSError as error:
        raise KeyFileError(path, "write_failed", f"cannot write: {error.strerror}") from error


def create_exclusive(path: Path, data: bytes, *, mode: int) -> None:
    """Create ``path`` with ``mode`` from the start (never chmod afterwards); fail if it exists."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
    try:
        fd = os.open(path, flags, mode)
    except FileExistsError as error:
        raise KeyFileError(path, "file_exists", "already exists; refusing to overwrite") from error
    except OSError as error:
        raise KeyFileError(path, "write_failed", f"cannot create: {error.strerror}") from error
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        fsync_directory(path.parent)
    except OSError as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        raise KeyFileError(path, "write_failed", f"cannot write: {error.strerror}") from error


def read_bounded(path: Path, *, limit: int, private: bool = False) -> tuple[bytes, os.stat_result]:
    """The bytes of regular file ``path`` (at most ``limit``) and its stat, from one descriptor.

    Symbolic links are not followed. With ``private``, a file that group or others may access
    is refused: a private key must be readable by its owner only.
    """
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _CLOEXEC)
    except FileNotFoundError as error:
        raise KeyFileError(path, "file_missing", "does not exist") from error
    except PermissionError as error:
        raise KeyFileError(path, "file_unreadable", "permission denied") from error
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise KeyFileError(path, "not_regular_file", "is a symbolic link") from error
        raise KeyFileError(path, "file_unreadable", f"cannot open: {error.strerror}") from error
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise KeyFileError(path, "not_regular_file", "is not a regular file")
        permissions = stat.S_IMODE(info.st_mode)
        if private and permissions & 0o077:
            kind = "readable" if permissions & 0o044 else "accessible"
            raise KeyFileError(
                path,
                "insecure_permissions",
                f"private key is group/world-{kind} (mode {permissions:04o}); run chmod 600 {path}",
            )
        if info.st_size > limit:
            raise KeyFileError(
                path, "file_too_large", f"is {info.st_size} bytes; the limit is {limit}"
            )
        chunks: list[bytes] = []
        remaining = limit + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 65536))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
    except OSError as error:
        raise KeyFileError(path, "file_unreadable", f"cannot read: {error.strerror}") from error
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > limit:
        raise KeyFileError(path, "file_too_large", f"grew beyond the limit of {limit} bytes")
    return data, info
