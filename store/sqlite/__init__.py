"""The embedded backend: one SQLite file (WAL, FTS5) plus content-addressed blob files."""

from __future__ import annotations

from store.sqlite.store import SqliteJobStore

__all__ = ["SqliteJobStore"]
