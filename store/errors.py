"""The store's exception hierarchy: every error carries a machine-readable ``reason``."""

from __future__ import annotations

from schemas.errors import SealflowError

__all__ = [
    "BlobCorrupt",
    "BlobNotFound",
    "BlobTooLarge",
    "DuplicateJob",
    "InvalidTransition",
    "JobNotFound",
    "StoreError",
    "StoreUnavailable",
]


class StoreError(SealflowError):
    """Base of the store's errors: ``reason`` is a snake_case code, the detail is for humans."""

    reason = "store_error"


class BlobNotFound(StoreError):
    """No blob is stored under this digest."""

    reason = "blob_missing"


class BlobCorrupt(StoreError):
    """The blob's bytes on disk no longer hash to its name."""

    reason = "digest_mismatch"


class BlobTooLarge(StoreError):
    """The blob (stored or being uploaded) is larger than the caller's limit."""

    reason = "too_large"


class JobNotFound(StoreError):
    """No job has this id."""

    reason = "job_not_found"


class InvalidTransition(StoreError):
    """The job's current state does not allow the requested one (e.g. ``done`` → ``failed``)."""

    reason = "invalid_transition"


class DuplicateJob(StoreError):
    """A job with this id already exists."""

    reason = "duplicate_job"


class StoreUnavailable(StoreError):
    """The database cannot be used: SQLite lacks FTS5, or the schema is newer than this code."""

    reason = "store_unavailable"
