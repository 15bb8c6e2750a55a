"""Storage: content-addressed blob files and the SQLite job store with full-text search.

Used by the gateway (blobs, jobs, search), the worker (states, results) and the parser
(blobs). It never talks AMQP.
"""

from __future__ import annotations

from store.blobs import BlobStore
from store.errors import (
    BlobCorrupt,
    BlobNotFound,
    BlobTooLarge,
    DuplicateJob,
    InvalidTransition,
    JobNotFound,
    StoreError,
    StoreUnavailable,
)
from store.jobs import MAX_LIST_LIMIT, MAX_SEARCH_LIMIT, JobStore
from store.records import (
    JOB_STATES,
    Job,
    JobEvent,
    JobResult,
    JobState,
    MetadataValue,
    NewJob,
    NewResult,
    ResultChunk,
    SearchHit,
)
from store.search_query import to_fts5_query

__all__ = [
    "JOB_STATES",
    "MAX_LIST_LIMIT",
    "MAX_SEARCH_LIMIT",
    "BlobCorrupt",
    "BlobNotFound",
    "BlobStore",
    "BlobTooLarge",
    "DuplicateJob",
    "InvalidTransition",
    "Job",
    "JobEvent",
    "JobNotFound",
    "JobResult",
    "JobState",
    "JobStore",
    "MetadataValue",
    "NewJob",
    "NewResult",
    "ResultChunk",
    "SearchHit",
    "StoreError",
    "StoreUnavailable",
    "to_fts5_query",
]
