"""Fixtures for the store tests: blob files, and a job store on each backend in turn."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from store_testing import BACKENDS, reset_postgres
from store_testing import postgres_url as postgres_url  # the session fixture, registered here

from store import BlobStore, JobStore, NewJob, PgJobStore, SqliteJobStore

_counter = itertools.count()

OpenStore = Callable[[], Awaitable[JobStore]]


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs")


@pytest.fixture(params=BACKENDS)
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> OpenStore:
    """Opens another handle on one empty database of the backend under test."""
    if request.param == "sqlite":
        path = tmp_path / "db" / "jobs.sqlite3"
        return lambda: SqliteJobStore.open(path)
    url: str = request.getfixturevalue("postgres_url")
    reset_postgres(url)
    return lambda: PgJobStore.open(url)


@pytest.fixture
async def store(open_store: OpenStore) -> AsyncIterator[JobStore]:
    async with await open_store() as opened:
        yield opened


@pytest.fixture
def new_job() -> Callable[..., NewJob]:
    """Build a valid NewJob; every field can be overridden."""

    def build(**overrides: object) -> NewJob:
        n = next(_counter)
        fields: dict[str, object] = {
            "job_id": f"job-{n}",
            "owner": "alice",
            "filename": f"file-{n}.txt",
            "content_type": "text/plain",
            "size": 10,
            "blob_sha256": hashlib.sha256(str(n).encode()).hexdigest(),
            "trace": "0af7651916cd43dd8448eb211c80319c",
        }
        fields.update(overrides)
        return NewJob(**fields)  # type: ignore[arg-type]

    return build
