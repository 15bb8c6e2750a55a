"""Where a parser reads an upload: PostgreSQL's rows (no shared disk) or the blob files."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from store_testing import reset_postgres

from store import BlobNotFound, BlobStore, BlobTooLarge, NewJob, PgJobStore, open_blob_reader


async def test_a_host_without_the_uploaders_disk_reads_the_blob_from_postgresql(
    postgres_url: str, tmp_path: Path, new_job: Callable[..., NewJob]
) -> None:
    """The gateway stores the job with its blob in one transaction; a parser on another host,
    with an empty data directory of its own, reads the same bytes from the database."""
    reset_postgres(postgres_url)
    data = b"hello from host A\n"
    job = new_job(blob_sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    async with await PgJobStore.open(postgres_url) as gateway_store:
        await gateway_store.create_with_blob(job, data)
    other_host = tmp_path / "host-c"
    reader = await open_blob_reader(postgres_url, other_host)
    try:
        assert await reader.read_blob(job.blob_sha256, max_bytes=1024) == data
        with pytest.raises(BlobTooLarge):
            await reader.read_blob(job.blob_sha256, max_bytes=4)
        with pytest.raises(BlobNotFound):
            await reader.read_blob("0" * 64, max_bytes=1024)
    finally:
        await reader.close()
    assert not (other_host / "blobs").exists()


async def test_the_embedded_backend_reads_the_blob_files(tmp_path: Path) -> None:
    """Without a database URL the reader is the content-addressed files under the data dir."""
    data = b"embedded\n"
    sha = BlobStore(tmp_path / "blobs").put(data)
    reader = await open_blob_reader(None, tmp_path)
    try:
        assert isinstance(reader, BlobStore)
        assert await reader.read_blob(sha, max_bytes=1024) == data
    finally:
        await reader.close()
