"""Choosing the backend from ``SEALFLOW_DATABASE_URL`` (DESIGN §8, §9), and upgrading its schema.

Unset (or empty): the embedded SQLite file ``<data_dir>/jobs.db`` with blob files under
``<data_dir>/blobs``. ``postgresql://…`` (or ``postgres://…``): PostgreSQL, shared by every
host, blobs included.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol
from urllib.parse import urlsplit

import psycopg
import structlog

from store.blobs import BlobStore
from store.job_store import JobStore
from store.postgres import PgJobStore
from store.postgres.database import unavailable
from store.postgres.migrations import SCHEMA_VERSION as PG_SCHEMA_VERSION
from store.postgres.migrations import migrate as pg_migrate
from store.sqlite import SqliteJobStore
from store.sqlite.database import DEFAULT_BUSY_TIMEOUT_MS, connect
from store.sqlite.schema import SCHEMA_VERSION as SQLITE_SCHEMA_VERSION
from store.sqlite.schema import prepare as prepare_sqlite

__all__ = [
    "BlobReader",
    "Upgrade",
    "backend_of",
    "open_blob_reader",
    "open_store",
    "upgrade_schema",
]

_log = structlog.get_logger("sealflow.store")
_POSTGRES_SCHEMES: Final = frozenset({"postgresql", "postgres"})
EMBEDDED_FILE: Final = "jobs.db"


def backend_of(database_url: str | None) -> str:
    """``"sqlite"`` for no URL, ``"postgresql"`` for a PostgreSQL one; ``ValueError`` otherwise."""
    if not database_url:
        return "sqlite"
    if urlsplit(database_url).scheme.lower() in _POSTGRES_SCHEMES:
        return "postgresql"
    raise ValueError("SEALFLOW_DATABASE_URL must be empty or a postgresql:// URL")


async def open_store(database_url: str | None, data_dir: Path) -> JobStore:
    """The job store the settings name, its schema migrated to this code's version."""
    store: JobStore
    if backend_of(database_url) == "postgresql":
        assert database_url is not None
        store = await PgJobStore.open(database_url)
    else:
        store = await SqliteJobStore.open(Path(data_dir) / EMBEDDED_FILE)
    _log.info("store.opened", backend=store.backend)
    return store


class BlobReader(Protocol):
    """What a reader of uploaded documents needs: a blob by digest, re-checked, bounded."""

    async def read_blob(self, sha256: str, *, max_bytes: int) -> bytes:
        """The blob's bytes (``BlobNotFound``, ``BlobTooLarge``, ``BlobCorrupt``)."""

    async def close(self) -> None:
        """Release what the reader holds."""


async def open_blob_reader(database_url: str | None, data_dir: Path) -> BlobReader:
    """Where uploads are read from: PostgreSQL's blob rows when the URL names it, so a parser
    on another host needs no shared disk; else the blob files under ``data_dir``."""
    if backend_of(database_url) == "postgresql":
        assert database_url is not None
        return await PgJobStore.open(database_url)
    return BlobStore(Path(data_dir) / "blobs")


@dataclass(frozen=True, slots=True)
class Upgrade:
    """What ``sealflow db upgrade`` did: the backend, and the versions before and after."""

    backend: str
    found: int
    now: int


async def upgrade_schema(database_url: str | None, data_dir: Path) -> Upgrade:
    """Apply every pending migration of the configured backend (``sealflow db upgrade``)."""
    if backend_of(database_url) == "postgresql":
        assert database_url is not None
        # One connection, no pool: a server that refuses fails the command at once.
        async with unavailable(), await psycopg.AsyncConnection.connect(database_url) as conn:
            found = await pg_migrate(conn)
        return Upgrade("postgresql", found, PG_SCHEMA_VERSION)
    path = Path(data_dir) / EMBEDDED_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    db = await connect(path, busy_timeout_ms=DEFAULT_BUSY_TIMEOUT_MS, read_only=False)
    try:
        found = await prepare_sqlite(db, path)
    finally:
        await db.close()
    return Upgrade("sqlite", found, SQLITE_SCHEMA_VERSION)
