"""An upload body part that streams a file from disk and reports how much has been sent."""

from __future__ import annotations

import asyncio
import mimetypes
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Final

from aiohttp import payload
from aiohttp.abc import AbstractStreamWriter

from schemas.formats import type_by_extension
from sealflow.client.errors import UploadError

__all__ = ["CHUNK_BYTES", "FilePayload", "guess_content_type"]

CHUNK_BYTES: Final = 64 * 1024

Progress = Callable[[int], None]


def guess_content_type(path: Path) -> str:
    """The media type for ``path`` by its suffix (``application/octet-stream`` if unknown)."""
    guessed = type_by_extension(path.name) or mimetypes.guess_type(path.name)[0]
    return guessed or "application/octet-stream"


class FilePayload(payload.Payload):
    """``path`` read in chunks off the event loop; ``progress(sent)`` after each chunk.

    The size is fixed when the payload is made, so the request has a Content-Length; a file
    that changes size while it is sent is an :class:`UploadError`, not a silently short body.
    """

    def __init__(self, path: Path, *, progress: Progress | None = None) -> None:
        try:
            size = path.stat().st_size
        except OSError as error:
            raise UploadError(f"cannot read {path}: {error.strerror}") from error
        super().__init__(path, content_type=guess_content_type(path), filename=path.name)
        self._path = path
        self._size = size
        self._progress = progress
        self._autoclose = True

    @property
    def path(self) -> Path:
        """The file being sent."""
        return self._path

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        """Not supported: the file is streamed, never held in memory."""
        raise TypeError("a streamed file payload cannot be decoded")

    async def write(self, writer: AbstractStreamWriter) -> None:
        """Stream the whole file."""
        await self.write_with_length(writer, None)

    async def write_with_length(
        self, writer: AbstractStreamWriter, content_length: int | None
    ) -> None:
        """Stream the file, at most ``content_length`` bytes of it."""
        expected = self._size or 0
        limit = expected if content_length is None else min(expected, content_length)
        try:
            handle = await asyncio.to_thread(self._open)
        except OSError as error:
            raise UploadError(f"cannot read {self._path}: {error.strerror}") from error
        try:
            sent = 0
            if self._progress is not None:
                self._progress(0)
            while sent < limit:
                chunk = await asyncio.to_thread(handle.read, min(CHUNK_BYTES, limit - sent))
                if not chunk:
                    raise UploadError(f"{self._path} shrank while it was being uploaded")
                await writer.write(chunk)
                sent += len(chunk)
                if self._progress is not None:
                    self._progress(sent)
            extra: bytes = await asyncio.to_thread(handle.read, 1)
            if content_length is None and extra:
                raise UploadError(f"{self._path} grew while it was being uploaded")
        finally:
            await asyncio.to_thread(handle.close)

    def _open(self) -> IO[bytes]:
        handle = open(self._path, "rb")  # noqa: SIM115 - closed in write_with_length
        if os.fstat(handle.fileno()).st_size != self._size:
            handle.close()
            raise UploadError(f"{self._path} changed size before it was uploaded")
        return handle
