"""The shared backend: PostgreSQL through psycopg 3 and its async pool, for several hosts.

The job store, and the spent envelope ids and revocations every replica shares.
"""

from __future__ import annotations

from store.postgres.revocations import PgRevocations
from store.postgres.spent_ids import PgSpentEnvelopes
from store.postgres.store import PgJobStore

__all__ = ["PgJobStore", "PgRevocations", "PgSpentEnvelopes"]
