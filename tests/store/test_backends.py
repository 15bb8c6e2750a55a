"""Choosing the backend from SEALFLOW_DATABASE_URL: unset is embedded, postgresql:// is shared."""

from __future__ import annotations

from pathlib import Path

import pytest
from store_testing import reset_postgres

from store import PgJobStore, SqliteJobStore, backend_of, open_store


def test_backend_of_reads_only_the_scheme() -> None:
    """No URL is the embedded store; both PostgreSQL spellings are PostgreSQL; nothing else is."""
    assert backend_of(None) == "sqlite"
    assert backend_of("") == "sqlite"
    assert backend_of("postgresql://u@h/db") == "postgresql"
    assert backend_of("POSTGRES://u@h/db") == "postgresql"
    for other in ("sqlite:///x.db", "mysql://h/db", "h/db", "file:jobs.db"):
        with pytest.raises(ValueError, match="postgresql://"):
            backend_of(other)


async def test_unset_url_opens_the_embedded_file_in_the_data_dir(tmp_path: Path) -> None:
    """Today's default, unchanged: ``<data_dir>/jobs.db`` and blob files beside it."""
    async with await open_store(None, tmp_path) as store:
        assert isinstance(store, SqliteJobStore)
        assert store.path == tmp_path / "jobs.db"
        assert store.blobs.root == tmp_path / "blobs"


async def test_a_postgresql_url_opens_the_shared_store_and_no_file(
    tmp_path: Path, postgres_url: str
) -> None:
    """With a PostgreSQL URL nothing of the store is written to the data dir."""
    reset_postgres(postgres_url)
    async with await open_store(postgres_url, tmp_path) as store:
        assert isinstance(store, PgJobStore)
        assert await store.list(owner=None) == []
    assert list(tmp_path.iterdir()) == []
