"""The embedded job database's schema, created and migrated on open (``PRAGMA user_version``).

Each entry of ``MIGRATIONS`` takes the schema from version *i* to *i + 1* and runs in one
transaction together with the ``user_version`` bump, so a crash leaves either version.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiosqlite

from store.errors import StoreUnavailable

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "check_fts5", "migrate", "prepare"]

_V1: tuple[str, ...] = (
    """
    CREATE TABLE jobs (
        job_id        TEXT PRIMARY KEY,
        owner         TEXT NOT NULL,
        filename      TEXT NOT NULL,
        content_type  TEXT NOT NULL,
        size          INTEGER NOT NULL CHECK (size >= 0),
        blob_sha256   TEXT NOT NULL,
        state         TEXT NOT NULL
                      CHECK (state IN ('queued', 'processing', 'done', 'failed')),
        created_at    INTEGER NOT NULL,
        updated_at    INTEGER NOT NULL,
        finished_at   INTEGER,
        error_reason  TEXT,
        error_detail  TEXT,
        trace         TEXT
    )
    """,
    "CREATE UNIQUE INDEX jobs_created ON jobs (created_at)",
    "CREATE INDEX jobs_owner_created ON jobs (owner, created_at)",
    "CREATE INDEX jobs_state_created ON jobs (state, created_at)",
    """
    CREATE TABLE job_events (
        id      INTEGER PRIMARY KEY,
        job_id  TEXT NOT NULL REFERENCES jobs (job_id) ON DELETE CASCADE,
        state   TEXT NOT NULL,
        at      INTEGER NOT NULL,
        detail  TEXT
    )
    """,
    "CREATE INDEX job_events_job ON job_events (job_id, id)",
    """
    CREATE TABLE results (
        job_id     TEXT PRIMARY KEY REFERENCES jobs (job_id) ON DELETE CASCADE,
        text       TEXT NOT NULL,
        metadata   TEXT NOT NULL,
        pages      INTEGER,
        parser     TEXT NOT NULL,
        stored_at  INTEGER NOT NULL
    )
    """,
    """
    CREATE TABLE result_chunks (
        id       INTEGER PRIMARY KEY,
        job_id   TEXT NOT NULL REFERENCES results (job_id) ON DELETE CASCADE,
        idx      INTEGER NOT NULL,
        start    INTEGER NOT NULL,
        "end"    INTEGER NOT NULL,
        page     INTEGER,
        UNIQUE (job_id, idx)
    )
    """,
    # rowid of a chunks_fts row = result_chunks.id, which joins a hit back to its job.
    """
    CREATE VIRTUAL TABLE chunks_fts USING fts5 (
        body, tokenize = 'unicode61 remove_diacritics 2'
    )
    """,
    """
    CREATE TABLE processed_keys (
        key  TEXT PRIMARY KEY,
        at   INTEGER NOT NULL
    ) WITHOUT ROWID
    """,
)

# The worker's sweeper: how many parse requests a job had after its first, and when the last
# one was claimed (no row: only the first, made at the move to ``processing``).
_V2: tuple[str, ...] = (
    """
    CREATE TABLE parse_requests (
        job_id        TEXT PRIMARY KEY REFERENCES jobs (job_id) ON DELETE CASCADE,
        rerequests    INTEGER NOT NULL CHECK (rerequests >= 0),
        requested_at  INTEGER NOT NULL
    ) WITHOUT ROWID
    """,
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2)
SCHEMA_VERSION = len(MIGRATIONS)


async def check_fts5(db: aiosqlite.Connection) -> None:
    """Raise ``StoreUnavailable`` unless this SQLite build has FTS5 (search depends on it)."""
    try:
        await db.execute("CREATE VIRTUAL TABLE temp.fts5_probe USING fts5 (x)")
        await db.execute("DROP TABLE temp.fts5_probe")
    except sqlite3.OperationalError as exc:
        raise StoreUnavailable(
            f"SQLite {sqlite3.sqlite_version} has no FTS5; full-text search needs it ({exc})",
            reason="fts5_unavailable",
        ) from exc


async def migrate(db: aiosqlite.Connection) -> int:
    """Bring the schema up to ``SCHEMA_VERSION``; returns the version found before."""
    async with db.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    found = int(row[0]) if row is not None else 0
    if found > SCHEMA_VERSION:
        raise StoreUnavailable(
            f"database schema version {found} is newer than this code's {SCHEMA_VERSION}",
            reason="schema_too_new",
        )
    for version in range(found, SCHEMA_VERSION):
        await db.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated while we waited for the write lock.
            async with db.execute("PRAGMA user_version") as cursor:
                row = await cursor.fetchone()
            if row is not None and int(row[0]) > version:
                await db.execute("COMMIT")
                continue
            for statement in MIGRATIONS[version]:
                await db.execute(statement)
            await db.execute(f"PRAGMA user_version = {version + 1}")
            await db.execute("COMMIT")
        except BaseException:
            await db.execute("ROLLBACK")
            raise
    return found


async def prepare(db: aiosqlite.Connection, path: Path) -> int:
    """Make the file at ``path`` usable: FTS5 present, WAL mode, schema migrated.

    Returns the schema version found before. Raises ``StoreUnavailable`` if SQLite lacks
    FTS5, refuses WAL, or the file's schema is newer than this code.
    """
    await check_fts5(db)
    async with db.execute("PRAGMA journal_mode = WAL") as cursor:
        row = await cursor.fetchone()
    if row is None or str(row[0]).lower() != "wal":
        raise StoreUnavailable(f"could not switch {path} to WAL mode", reason="wal_unavailable")
    return await migrate(db)
