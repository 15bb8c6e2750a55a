"""``SqliteJobStore``: the embedded backend of ``store.JobStore``, assembled from its parts."""

from __future__ import annotations

from pathlib import Path

from store.blobs import BlobStore
from store.job_store import JobStore
from store.sqlite.database import DEFAULT_BUSY_TIMEOUT_MS, connect
from store.sqlite.jobs import SqliteJobs
from store.sqlite.ledger import SqliteLedger
from store.sqlite.parse_requests import SqliteParseRequests
from store.sqlite.schema import prepare
from store.sqlite.search import SqliteResults

__all__ = ["SqliteJobStore"]


class SqliteJobStore(SqliteJobs, SqliteResults, SqliteLedger, SqliteParseRequests, JobStore):
    """Jobs, results, search and the ledger in one SQLite file; blobs as files. Use :meth:`open`."""

    __slots__ = ()

    backend = "sqlite"

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        blobs: BlobStore | None = None,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    ) -> SqliteJobStore:
        """Open (creating and migrating if needed) the database at ``path``.

        Blobs live in ``blobs``, by default the ``blobs`` directory beside the database.
        Raises ``StoreUnavailable`` if SQLite lacks FTS5 or the file's schema is newer.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = await connect(path, busy_timeout_ms=busy_timeout_ms, read_only=False)
        try:
            await prepare(writer, path)
            reader = await connect(path, busy_timeout_ms=busy_timeout_ms, read_only=True)
        except BaseException:
            await writer.close()
            raise
        return cls(
            path, writer, reader, blobs if blobs is not None else BlobStore(path.parent / "blobs")
        )
