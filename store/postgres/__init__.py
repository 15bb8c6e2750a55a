"""The shared backend: PostgreSQL through psycopg 3 and its async pool, for several hosts."""

from __future__ import annotations

from store.postgres.store import PgJobStore

__all__ = ["PgJobStore"]
