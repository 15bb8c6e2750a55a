"""A job created together with its blob: stored atomically, read back checked, on each backend."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from store_testing import reset_postgres

from store import (
    BlobCorrupt,
    BlobNotFound,
    BlobTooLarge,
    DuplicateJob,
    JobStore,
    NewJob,
    PgJobStore,
)

MakeJob = Callable[..., NewJob]


def _for(data: bytes, new_job: MakeJob, **overrides: object) -> NewJob:
    fields: dict[str, object] = {"blob_sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    return new_job(**{**fields, **overrides})


async def test_create_with_blob_then_read_it_back(store: JobStore, new_job: MakeJob) -> None:
    """The job is queued and its blob reads back byte for byte, including a multi-part one."""
    for data in (b"", b"hello", bytes(range(256)) * 9000):
        job = await store.create_with_blob(_for(data, new_job), data)
        assert job.state == "queued"
        assert await store.read_blob(job.blob_sha256, max_bytes=len(data)) == data
        assert await store.blob_in_use(job.blob_sha256)


async def test_bytes_that_do_not_match_the_job_store_nothing(
    store: JobStore, new_job: MakeJob
) -> None:
    """Bytes whose digest or size differs from the job's are refused before anything is kept."""
    job = _for(b"declared", new_job)
    with pytest.raises(BlobCorrupt):
        await store.create_with_blob(job, b"delivered")
    with pytest.raises(BlobCorrupt):
        await store.create_with_blob(_for(b"x", new_job, size=2), b"x")
    assert await store.get(job.job_id) is None
    with pytest.raises(BlobNotFound):
        await store.read_blob(job.blob_sha256, max_bytes=100)


async def test_a_duplicate_job_leaves_no_new_blob_on_postgresql(
    store: JobStore, new_job: MakeJob
) -> None:
    """On PostgreSQL the blob commits with the job row: a refused job leaves no blob behind."""
    first = await store.create(new_job())
    data = b"orphan candidate"
    with pytest.raises(DuplicateJob):
        await store.create_with_blob(_for(data, new_job, job_id=first.job_id), data)
    sha = hashlib.sha256(data).hexdigest()
    if isinstance(store, PgJobStore):
        with pytest.raises(BlobNotFound):
            await store.read_blob(sha, max_bytes=100)


async def test_read_blob_enforces_max_bytes(store: JobStore, new_job: MakeJob) -> None:
    """A blob over the caller's limit is refused as too large."""
    data = b"0123456789"
    job = await store.create_with_blob(_for(data, new_job), data)
    with pytest.raises(BlobTooLarge):
        await store.read_blob(job.blob_sha256, max_bytes=9)


async def test_two_jobs_share_one_blob_until_the_last_is_deleted(
    store: JobStore, new_job: MakeJob
) -> None:
    """The same bytes uploaded twice are stored once; deleting one job keeps them for the other."""
    data = b"shared bytes"
    one = await store.create_with_blob(_for(data, new_job), data)
    two = await store.create_with_blob(_for(data, new_job), data)
    assert await store.delete(one.job_id)
    assert await store.read_blob(two.blob_sha256, max_bytes=100) == data
    assert await store.delete(two.job_id)
    assert not await store.blob_in_use(two.blob_sha256)
    if isinstance(store, PgJobStore):
        with pytest.raises(BlobNotFound):
            await store.read_blob(two.blob_sha256, max_bytes=100)


async def test_a_tampered_blob_part_is_detected_on_postgresql(
    postgres_url: str, new_job: MakeJob
) -> None:
    """Bytes changed in the database after the upload no longer hash to the name: refused."""
    reset_postgres(postgres_url)
    async with await PgJobStore.open(postgres_url) as store:
        data = b"genuine"
        job = await store.create_with_blob(_for(data, new_job), data)
        async with store.pool.connection() as conn:
            await conn.execute("UPDATE blob_parts SET data = %s", (b"genuinf",))
        with pytest.raises(BlobCorrupt):
            await store.read_blob(job.blob_sha256, max_bytes=100)
