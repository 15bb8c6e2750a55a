"""``PgJobStore``: the PostgreSQL backend of ``store.JobStore``, assembled from its parts."""

from __future__ import annotations

from store.job_store import JobStore
from store.postgres.database import DEFAULT_POOL_MAX, open_pool
from store.postgres.jobs import PgJobs
from store.postgres.ledger import PgLedger
from store.postgres.parse_requests import PgParseRequests
from store.postgres.search import PgResults

__all__ = ["PgJobStore"]


class PgJobStore(PgJobs, PgResults, PgLedger, PgParseRequests, JobStore):
    """Jobs, results, search, the ledger and job blobs in PostgreSQL. Use :meth:`open`."""

    __slots__ = ()

    backend = "postgresql"

    @classmethod
    async def open(
        cls, url: str, *, max_connections: int = DEFAULT_POOL_MAX, upgrade: bool = True
    ) -> PgJobStore:
        """Connect a pool to ``url`` (``postgresql://…``), migrating the schema unless told not.

        Raises ``StoreUnavailable`` when the server does not answer or the schema does not fit.
        """
        return cls(await open_pool(url, max_size=max_connections, upgrade=upgrade))
