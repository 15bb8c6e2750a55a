"""Storage behind one interface (``JobStore``) with two backends, chosen by one setting.

``open_store(SEALFLOW_DATABASE_URL, data_dir)``: unset means the embedded SQLite file and
content-addressed blob files (``store.sqlite``); ``postgresql://…`` means PostgreSQL
(``store.postgres``), which also holds blobs, spent envelope ids and revocations for every
replica. Used by the gateway, the worker and the parser. It never talks AMQP.
"""

from __future__ import annotations

from store.backends import (
    BlobReader,
    Upgrade,
    backend_of,
    open_blob_reader,
    open_store,
    upgrade_schema,
)
from store.blobs import BlobStore
from store.bounds import MAX_LIST_LIMIT, MAX_SEARCH_LIMIT
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
from store.job_store import JobStore
from store.postgres import PgJobStore, PgRevocations, PgSpentEnvelopes
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
    StuckJob,
)
from store.search_query import to_fts5_query
from store.sqlite import SqliteJobStore

__all__ = [
    "JOB_STATES",
    "MAX_LIST_LIMIT",
    "MAX_SEARCH_LIMIT",
    "BlobCorrupt",
    "BlobNotFound",
    "BlobReader",
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
    "PgJobStore",
    "PgRevocations",
    "PgSpentEnvelopes",
    "ResultChunk",
    "SearchHit",
    "SqliteJobStore",
    "StoreError",
    "StoreUnavailable",
    "StuckJob",
    "Upgrade",
    "backend_of",
    "open_blob_reader",
    "open_store",
    "to_fts5_query",
    "upgrade_schema",
]
