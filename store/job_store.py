"""The job store's one interface; ``store.sqlite`` and ``store.postgres`` implement it.

Jobs and their state history, parse results and their full-text search, the worker's
idempotency ledger, and the blob a job names. Every backend answers the same way: the
store tests run against each of them.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from datetime import datetime
from types import TracebackType
from typing import Self

from store.records import (
    Job,
    JobEvent,
    JobResult,
    JobState,
    NewJob,
    NewResult,
    SearchHit,
    StuckJob,
)

__all__ = ["JobStore"]


class JobStore(ABC):
    """Jobs, state history, results, search, the ledger and job blobs. Open with ``open_store``."""

    __slots__ = ()

    backend: str
    """``"sqlite"`` or ``"postgresql"``, for logs and health."""

    @abstractmethod
    async def close(self) -> None:
        """Release the connections; the store cannot be used afterwards."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- jobs -------------------------------------------------------------------------------

    @abstractmethod
    async def create(self, job: NewJob) -> Job:
        """Record a new ``queued`` job; raises ``DuplicateJob`` if its id is taken.

        ``created_at`` is strictly increasing per database, so "newest first" and paging
        are exact.
        """

    @abstractmethod
    async def create_with_blob(self, job: NewJob, data: bytes) -> Job:
        """Store the blob ``job`` names together with the job (one transaction on PostgreSQL).

        Raises ``BlobCorrupt`` unless ``data`` hashes to ``job.blob_sha256`` and is
        ``job.size`` bytes long, and ``DuplicateJob`` as :meth:`create` does.
        """

    @abstractmethod
    async def read_blob(self, sha256: str, *, max_bytes: int) -> bytes:
        """A job blob's bytes after re-checking their digest.

        Raises ``BlobNotFound``, ``BlobTooLarge`` (over ``max_bytes``) or ``BlobCorrupt``.
        """

    @abstractmethod
    async def get(self, job_id: str) -> Job | None:
        """The job with this id, or None."""

    @abstractmethod
    async def list(
        self,
        *,
        owner: str | None,
        state: JobState | None = None,
        limit: int = 50,
        before: datetime | None = None,
    ) -> builtins.list[Job]:
        """Jobs newest first: ``owner`` None means everyone's (admin); ``before`` pages.

        ``limit`` is capped at ``MAX_LIST_LIMIT``; ``before`` must be timezone-aware.
        """

    @abstractmethod
    async def delete(self, job_id: str) -> bool:
        """Remove a job with its events, result and search rows; True if it existed."""

    @abstractmethod
    async def blob_in_use(self, blob_sha256: str) -> bool:
        """Whether any recorded job names this blob (so it must not be deleted)."""

    # -- state ------------------------------------------------------------------------------

    @abstractmethod
    async def transition(
        self,
        job_id: str,
        to: JobState,
        *,
        detail: str | None = None,
        error_reason: str | None = None,
    ) -> bool:
        """Move a job to state ``to`` and record the event.

        True if it moved; False if it already was in ``to`` (a redelivery); raises
        ``InvalidTransition`` from any other state and ``JobNotFound``. On ``failed``,
        ``error_reason`` and ``detail`` are kept on the job (``detail`` capped in length).
        Of concurrent transitions out of one state, exactly one wins, across processes too.
        """

    @abstractmethod
    async def events(self, job_id: str) -> builtins.list[JobEvent]:
        """The job's state history, oldest first (empty for an unknown job)."""

    # -- stuck jobs (the worker's sweeper) ----------------------------------------------------

    @abstractmethod
    async def stuck_jobs(
        self, *, requested_before: datetime, limit: int = 100
    ) -> builtins.list[StuckJob]:
        """``processing`` jobs whose last parse request is older than ``requested_before``.

        Oldest request first; ``limit`` is capped at ``MAX_LIST_LIMIT``; ``requested_before``
        must be timezone-aware. A job's first request is its move to ``processing``.
        """

    @abstractmethod
    async def claim_parse_request(
        self, job_id: str, *, requested_before: datetime, rerequests_below: int | None
    ) -> int | None:
        """Claim one more parse request for a ``processing`` job; its number, or None.

        A conditional update, so of several workers only one claims a request: the job must
        still be ``processing``, its last request older than ``requested_before`` and (unless
        ``rerequests_below`` is None) fewer than ``rerequests_below`` re-requests made. The
        claim counts the request and records now as its time.
        """

    # -- results and search -----------------------------------------------------------------

    @abstractmethod
    async def store_result(self, job_id: str, result: NewResult) -> bool:
        """Store a job's result and index its chunks, all in one transaction.

        True if stored now; False if the job already had a result (a redelivered message),
        in which case nothing changes. Raises ``JobNotFound``.
        """

    @abstractmethod
    async def get_result(self, job_id: str) -> JobResult | None:
        """The job's stored result, or None if there is none (yet)."""

    @abstractmethod
    async def search(
        self, owner: str | None, query: str, *, limit: int = 20
    ) -> builtins.list[SearchHit]:
        """Chunks matching every word of ``query``, best first, from ``owner``'s jobs.

        ``owner`` None searches everyone's (admin). ``query`` is untrusted: only its words
        are used (see ``store.search_query``), so no input is query syntax. A query without
        words gives ``[]``. ``limit`` is capped at ``MAX_SEARCH_LIMIT``. Snippets mark
        matches with ``[`` and ``]`` (see ``SearchHit``).
        """

    # -- idempotency ------------------------------------------------------------------------

    @abstractmethod
    async def was_processed(self, key: str) -> bool:
        """True if :meth:`mark_processed` has recorded ``key`` (an event already sent)."""

    @abstractmethod
    async def mark_processed(self, key: str) -> bool:
        """Remember a consumer's idempotency key; True the first time it is seen."""
