"""Content-addressed blob files: ``<root>/<sha[:2]>/<sha[2:4]>/<sha>``.

A blob only ever appears under its final name complete and synced: it is written to a
temporary file on the same file system, fsynced, renamed into place with ``os.replace``,
and the directory is fsynced. Temporary files start with ``.tmp-`` and are removed on
every failure path.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import os
import secrets
from collections.abc import AsyncIterable
from pathlib import Path
from typing import BinaryIO

from keys.filemodes import PRIVATE_DIR_MODE, open_private, private_dir
from store.digests import check_sha256
from store.errors import BlobCorrupt, BlobNotFound, BlobTooLarge

__all__ = ["SPOOL_BYTES", "BlobStore"]

_READ_BLOCK = 1 << 20
_TEMP_PREFIX = ".tmp-"
SPOOL_BYTES = 1 << 18
"""Bytes of a streamed upload held in memory before they are written (bounded per upload)."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_name(directory: Path) -> Path:
    return directory / f"{_TEMP_PREFIX}{secrets.token_hex(8)}"


def _open_temp(temp: Path) -> BinaryIO:
    return os.fdopen(open_private(temp, os.O_WRONLY | os.O_EXCL), "wb")


def _write_chunks(handle: BinaryIO, chunks: list[bytes]) -> None:
    for chunk in chunks:
        handle.write(chunk)


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


class BlobStore:
    """Blobs named by their sha-256; safe against torn writes and path tricks."""

    __slots__ = ("root",)

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        private_dir(self.root)

    def path_for(self, sha256: str) -> Path:
        """Where the blob with this digest lives (``ValueError`` unless 64 lowercase hex)."""
        check_sha256(sha256)
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def exists(self, sha256: str) -> bool:
        """Whether a blob is stored under this digest (its content is not re-checked)."""
        return self.path_for(sha256).is_file()

    def put(self, data: bytes) -> str:
        """Store ``data`` and return its sha-256 hex; storing the same bytes again is a no-op."""
        sha256 = hashlib.sha256(data).hexdigest()
        final = self.path_for(sha256)
        if self._intact(final, sha256):
            return sha256
        self._ensure_dir(final.parent)
        temp = _temp_name(final.parent)
        try:
            with os.fdopen(open_private(temp, os.O_WRONLY | os.O_EXCL), "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, final)
        finally:
            _unlink_quietly(temp)
        _fsync_dir(final.parent)
        return sha256

    async def put_stream(self, chunks: AsyncIterable[bytes], *, max_bytes: int) -> tuple[str, int]:
        """Store a streamed upload, hashing as it is written; returns ``(sha256, size)``.

        Raises ``BlobTooLarge`` as soon as more than ``max_bytes`` arrive; the partial
        temporary file is removed then, and on any other error or cancellation. Up to
        ``SPOOL_BYTES`` are held in memory before the first write, so a small upload costs
        one trip to a worker thread (open, write, fsync, rename, directory fsync), and the
        event loop never waits on the disk.
        """
        if max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        digest = hashlib.sha256()
        size = 0
        temp = _temp_name(self.root)
        pending: list[bytes] = []
        pending_size = 0
        handle: BinaryIO | None = None
        try:
            try:
                async for chunk in chunks:
                    if not isinstance(chunk, bytes | bytearray | memoryview):
                        raise TypeError("put_stream chunks must be bytes")
                    size += len(chunk)
                    if size > max_bytes:
                        raise BlobTooLarge(f"upload is larger than {max_bytes} bytes")
                    digest.update(chunk)
                    pending.append(bytes(chunk))
                    pending_size += len(chunk)
                    if pending_size >= SPOOL_BYTES:
                        if handle is None:
                            handle = await asyncio.to_thread(_open_temp, temp)
                        await asyncio.to_thread(_write_chunks, handle, pending)
                        pending, pending_size = [], 0
                sha256 = digest.hexdigest()
                await asyncio.to_thread(self._finish, handle, temp, pending, sha256)
            finally:
                if handle is not None:
                    handle.close()
        finally:
            _unlink_quietly(temp)
        return sha256, size

    def _finish(
        self, handle: BinaryIO | None, temp: Path, pending: list[bytes], sha256: str
    ) -> None:
        """Write what is still held, fsync the temporary file and install it under its name."""
        if handle is None:
            with _open_temp(temp) as own:
                _write_chunks(own, pending)
                self._sync(own)
        else:
            _write_chunks(handle, pending)
            self._sync(handle)
        self._install(temp, sha256)

    def read(self, sha256: str, *, max_bytes: int) -> bytes:
        """The blob's bytes after re-checking their digest.

        Raises ``BlobNotFound``, ``BlobTooLarge`` (over ``max_bytes``; nothing beyond the
        limit is read) or ``BlobCorrupt`` (the bytes no longer hash to the name).
        """
        path = self.path_for(sha256)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise BlobNotFound(f"no blob {sha256}") from exc
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            raise BlobCorrupt(f"blob {sha256} is a symbolic link, not a file") from exc
        with os.fdopen(fd, "rb") as handle:
            if os.fstat(handle.fileno()).st_size > max_bytes:
                raise BlobTooLarge(f"blob {sha256} is larger than {max_bytes} bytes")
            data = handle.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise BlobTooLarge(f"blob {sha256} is larger than {max_bytes} bytes")
        if hashlib.sha256(data).hexdigest() != sha256:
            raise BlobCorrupt(f"blob {sha256} does not match its digest")
        return data

    async def read_blob(self, sha256: str, *, max_bytes: int) -> bytes:
        """:meth:`read` off the event loop: what a parser reads through (``BlobReader``)."""
        return await asyncio.to_thread(self.read, sha256, max_bytes=max_bytes)

    async def close(self) -> None:
        """Nothing to release (files are opened per read); there for ``BlobReader``."""

    def delete(self, sha256: str) -> bool:
        """Remove the blob; True if it existed."""
        path = self.path_for(sha256)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        _fsync_dir(path.parent)
        return True

    @staticmethod
    def _sync(handle: BinaryIO) -> None:
        handle.flush()
        os.fsync(handle.fileno())

    def _install(self, temp: Path, sha256: str) -> None:
        """Move a synced temporary file to the blob's final name, unless it is already there."""
        final = self.path_for(sha256)
        if self._intact(final, sha256):
            return
        self._ensure_dir(final.parent)
        os.replace(temp, final)
        _fsync_dir(final.parent)

    def _intact(self, path: Path, sha256: str) -> bool:
        """True if ``path`` holds exactly the bytes named by ``sha256``."""
        digest = hashlib.sha256()
        try:
            with path.open("rb") as handle:
                while block := handle.read(_READ_BLOCK):
                    digest.update(block)
        except FileNotFoundError:
            return False
        return digest.hexdigest() == sha256

    def _ensure_dir(self, directory: Path) -> None:
        """Create the shard directories, fsyncing each parent that gained an entry."""
        missing: list[Path] = []
        current = directory
        while current != self.root and not current.is_dir():
            missing.append(current)
            current = current.parent
        for path in reversed(missing):
            try:
                path.mkdir(mode=PRIVATE_DIR_MODE)
            except FileExistsError:
                continue
            _fsync_dir(path.parent)
