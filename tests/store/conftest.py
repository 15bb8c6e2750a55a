"""Fixtures for the store tests: a blob store and a job store in tmp_path."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from store import BlobStore, JobStore, NewJob

_counter = itertools.count()


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[JobStore]:
    async with await JobStore.open(tmp_path / "db" / "jobs.sqlite3") as opened:
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
