"""Reading a multipart upload: each ``file`` part streamed, checked and stored as a blob (and a
local file for ``sealflow submit``, checked and stored the same way).

Nothing is read into memory beyond one chunk: each part goes straight to
``BlobStore.put_stream`` with the size limit, through a :class:`ContentCheck` of its type.
The upload is all-or-nothing: every part is checked and stored before any job is recorded,
and if one part is refused the blobs already stored for this request are discarded again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from gateway.blobkeeper import BlobKeeper
from gateway.content_types import PDF, SNIFF, ContentCheck, resolve_content_type, upload_limit
from gateway.errors import (
    GatewayError,
    InvalidUpload,
    RequestTimeout,
    TooLarge,
    UnsupportedType,
)
from gateway.filenames import safe_filename
from gateway.settings import GatewaySettings
from gateway.submission import Document
from schemas.formats import too_large_detail
from store import BlobTooLarge

__all__ = ["FILE_FIELD", "receive_files", "store_local_file"]

FILE_FIELD: Final = "file"
CHUNK_BYTES: Final = 64 * 1024
_IDENTITY_ENCODINGS: Final = frozenset({"", "binary", "8bit", "7bit", "identity"})


@dataclass
class _Budget:
    """What is left of the request's total byte allowance."""

    remaining: int


async def _part_chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(CHUNK_BYTES):
        yield chunk


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as handle:
        while chunk := await asyncio.to_thread(handle.read, CHUNK_BYTES):
            yield chunk


async def _checked(chunks: AsyncIterator[bytes], check: ContentCheck) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        check.feed(chunk)
        yield chunk


async def _store_checked(
    chunks: AsyncIterator[bytes],
    filename: str,
    declared: str | None,
    settings: GatewaySettings,
    keeper: BlobKeeper,
    budget: _Budget,
) -> Document:
    """Store one file's bytes as a blob, checked against its type as they stream by; the blob
    is held for a job (``keeper``) and discarded again if the check fails."""
    resolved = resolve_content_type(declared, filename, settings.allowed_content_types)
    check = ContentCheck(resolved)
    # What the parser would refuse as too large is refused here, with the same limit.
    file_limit = upload_limit(resolved, settings.max_upload_bytes)
    limit = min(file_limit, budget.remaining)
    try:
        sha256, size = await keeper.blobs.put_stream(_checked(chunks, check), max_bytes=limit)
    except BlobTooLarge as error:
        if limit < file_limit:
            raise TooLarge(
                f"the upload is larger than {settings.max_request_bytes} bytes"
            ) from error
        detail = too_large_detail(PDF if resolved == SNIFF else resolved, file_limit)
        raise TooLarge(f"{filename} is {detail}") from error
    keeper.hold(sha256)
    try:
        content_type = check.finish()
        if size == 0:
            raise InvalidUpload(f"{filename} is empty")
    except GatewayError:
        await keeper.discard(sha256)
        raise
    budget.remaining -= size
    return Document(filename=filename, content_type=content_type, size=size, blob_sha256=sha256)


async def _store_part(
    part: BodyPartReader, settings: GatewaySettings, keeper: BlobKeeper, budget: _Budget
) -> Document:
    if part.name != FILE_FIELD:
        raise InvalidUpload(f"unexpected form field {str(part.name)[:64]!r}: send parts named file")
    if part.filename is None:
        raise InvalidUpload("a file part needs a filename")
    for header in ("Content-Transfer-Encoding", "Content-Encoding"):
        if part.headers.get(header, "").strip().lower() not in _IDENTITY_ENCODINGS:
            raise InvalidUpload(f"{header} is not supported; send the file's bytes as they are")
    filename = safe_filename(part.filename)
    declared = part.headers.get("Content-Type")
    return await _store_checked(_part_chunks(part), filename, declared, settings, keeper, budget)


async def store_local_file(path: Path, settings: GatewaySettings, keeper: BlobKeeper) -> Document:
    """A file on this machine, checked and stored as an upload's part would be (type from its
    name and bytes, size limit); held in ``keeper`` until its job is recorded."""
    budget = _Budget(settings.max_upload_bytes)
    filename = safe_filename(path.name)
    return await _store_checked(_file_chunks(path), filename, None, settings, keeper, budget)


async def _read_parts(
    reader: MultipartReader, settings: GatewaySettings, keeper: BlobKeeper
) -> list[Document]:
    received: list[Document] = []
    budget = _Budget(settings.max_request_bytes)
    try:
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader):
                raise InvalidUpload("nested multipart bodies are not supported")
            if len(received) >= settings.max_files_per_upload:
                raise TooLarge(f"at most {settings.max_files_per_upload} files per upload")
            received.append(await _store_part(part, settings, keeper, budget))
    except BaseException:
        for file in received:
            await keeper.discard(file.blob_sha256)
        raise
    return received


async def receive_files(
    request: web.Request, settings: GatewaySettings, keeper: BlobKeeper
) -> list[Document]:
    """Every ``file`` part of a ``multipart/form-data`` request, stored and checked.

    Raises 415 for a body that is not multipart, 413 over the size or file-count limits, 400
    for a malformed body or one without files, 408 when reading takes too long. On any of
    those, no blob stored by this request is left behind (unless another job shares it).
    """
    if request.content_type != "multipart/form-data":
        raise UnsupportedType("send the files as multipart/form-data")
    declared = request.content_length
    if declared is not None and declared > settings.max_request_bytes:
        raise TooLarge(f"the upload is larger than {settings.max_request_bytes} bytes")
    try:
        async with asyncio.timeout(settings.upload_timeout):
            reader = await request.multipart()
            received = await _read_parts(reader, settings, keeper)
    except TimeoutError as error:
        raise RequestTimeout("the upload took too long") from error
    except (HttpProcessingError, ValueError, AssertionError, RuntimeError, LookupError) as error:
        # aiohttp's multipart reader reports a malformed body with these.
        raise InvalidUpload(f"malformed multipart body: {type(error).__name__}") from error
    if not received:
        raise InvalidUpload("no file in the upload: send one or more parts named file")
    return received
