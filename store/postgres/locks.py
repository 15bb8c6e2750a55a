"""Every PostgreSQL advisory-lock key this project takes, in one table so no two collide.

Single-key (bigint) locks serialize one kind of operation across every process on the
database; the two-key form (``pg_advisory_xact_lock(int, int)``) lives in a key space of its
own and is used per item (a blob, a rate-limit key) under the first keys named here.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "AUDIT_SCHEMA_LOCK",
    "BLOB_LOCK_SPACE",
    "DEVICE_ISSUE_LOCK",
    "IDENTITY_SCHEMA_LOCK",
    "JOB_CREATE_LOCK",
    "JOB_SCHEMA_LOCK",
]

JOB_SCHEMA_LOCK: Final = 0x5EA1F10_0001
"""Migrating the job store's schema."""
JOB_CREATE_LOCK: Final = 0x5EA1F10_0002
"""Creating a job with its queued event (one creation order across replicas)."""
DEVICE_ISSUE_LOCK: Final = 0x5EA1F10_0003
"""Issuing a device code: counting the pending caps and inserting are one step."""
IDENTITY_SCHEMA_LOCK: Final = 0x5EA1F10_0004
"""Migrating the identity's schema."""
AUDIT_SCHEMA_LOCK: Final = 0x5EA1F10_0010
"""Migrating the audit anchor's table."""
BLOB_LOCK_SPACE: Final = 0x5EA1
"""First key of the two-key locks ordering a blob's insert against its deletion."""
