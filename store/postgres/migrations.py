"""The PostgreSQL schema as numbered migrations, applied in order and recorded in the database.

Each entry of ``MIGRATIONS`` takes the schema from version *i* to *i + 1*. Each runs in its
own transaction together with its row in ``sealflow_schema``, under an advisory lock, so
several daemons starting at once apply it exactly once and a crash leaves either version.
Never edit a released entry: append a new one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, LiteralString

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from store.errors import StoreUnavailable
from store.postgres.locks import JOB_SCHEMA_LOCK

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Migrations",
    "apply_migrations",
    "migrate",
    "schema_version",
]

_LOCK_KEY: Final = JOB_SCHEMA_LOCK
"""The advisory lock every migrating process takes (an arbitrary constant of this project)."""

_V1: Final[tuple[LiteralString, ...]] = (
    "CREATE EXTENSION IF NOT EXISTS unaccent",
    # Like SQLite's unicode61 remove_diacritics: no stemming, no stop words, case and
    # accents folded, so the same words match on both backends.
    "CREATE TEXT SEARCH CONFIGURATION sealflow_search (COPY = simple)",
    "ALTER TEXT SEARCH CONFIGURATION sealflow_search "
    "ALTER MAPPING FOR hword, hword_part, word, numword, numhword, hword_numpart "
    "WITH unaccent, simple",
    """
    CREATE TABLE jobs (
        job_id        TEXT PRIMARY KEY,
        owner         TEXT NOT NULL,
        filename      TEXT NOT NULL,
        content_type  TEXT NOT NULL,
        size          BIGINT NOT NULL CHECK (size >= 0),
        blob_sha256   TEXT NOT NULL,
        state         TEXT NOT NULL
                      CHECK (state IN ('queued', 'processing', 'done', 'failed')),
        created_at    BIGINT NOT NULL,
        updated_at    BIGINT NOT NULL,
        finished_at   BIGINT,
        error_reason  TEXT,
        error_detail  TEXT,
        trace         TEXT
    )
    """,
    "CREATE UNIQUE INDEX jobs_created ON jobs (created_at)",
    "CREATE INDEX jobs_owner_created ON jobs (owner, created_at)",
    "CREATE INDEX jobs_state_created ON jobs (state, created_at)",
    "CREATE INDEX jobs_blob ON jobs (blob_sha256)",
    """
    CREATE TABLE job_events (
        id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        job_id  TEXT NOT NULL REFERENCES jobs (job_id) ON DELETE CASCADE,
        state   TEXT NOT NULL,
        at      BIGINT NOT NULL,
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
        stored_at  BIGINT NOT NULL
    )
    """,
    # ASCII punctuation becomes a space before parsing, so that an e-mail address, a URL or
    # a file name is split into its words as SQLite's unicode61 tokenizer splits it.
    """
    CREATE TABLE result_chunks (
        id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        job_id  TEXT NOT NULL REFERENCES results (job_id) ON DELETE CASCADE,
        idx     INTEGER NOT NULL,
        start   INTEGER NOT NULL,
        "end"   INTEGER NOT NULL,
        page    INTEGER,
        body    TEXT NOT NULL,
        words   tsvector GENERATED ALWAYS AS (
                    to_tsvector('sealflow_search'::regconfig,
                                regexp_replace(body, '[[:punct:]]+', ' ', 'g'))
                ) STORED,
        UNIQUE (job_id, idx)
    )
    """,
    "CREATE INDEX result_chunks_words ON result_chunks USING GIN (words)",
    """
    CREATE TABLE processed_keys (
        key  TEXT PRIMARY KEY,
        at   BIGINT NOT NULL
    )
    """,
    """
    CREATE TABLE blobs (
        sha256      TEXT PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
        size        BIGINT NOT NULL CHECK (size >= 0),
        stored_at   BIGINT NOT NULL
    )
    """,
    """
    CREATE TABLE blob_parts (
        sha256  TEXT NOT NULL REFERENCES blobs (sha256) ON DELETE CASCADE,
        seq     INTEGER NOT NULL CHECK (seq >= 0),
        data    BYTEA NOT NULL,
        PRIMARY KEY (sha256, seq)
    )
    """,
    """
    CREATE TABLE spent_envelopes (
        jti         TEXT PRIMARY KEY,
        expires_at  DOUBLE PRECISION NOT NULL,
        state       TEXT NOT NULL CHECK (state IN ('pending', 'done'))
    )
    """,
    "CREATE INDEX spent_envelopes_expiry ON spent_envelopes (expires_at)",
    """
    CREATE TABLE revocations (
        revocation_id  TEXT PRIMARY KEY,
        until          DOUBLE PRECISION,
        body           TEXT NOT NULL,
        added_at       BIGINT NOT NULL
    )
    """,
    "CREATE INDEX revocations_until ON revocations (until)",
)

# The worker's sweeper: how many parse requests a job had after its first, and when the last
# one was claimed (no row: only the first, made at the move to ``processing``).
_V2: Final[tuple[LiteralString, ...]] = (
    """
    CREATE TABLE parse_requests (
        job_id        TEXT PRIMARY KEY REFERENCES jobs (job_id) ON DELETE CASCADE,
        rerequests    INTEGER NOT NULL CHECK (rerequests >= 0),
        requested_at  BIGINT NOT NULL
    )
    """,
)

MIGRATIONS: Final[tuple[tuple[LiteralString, ...], ...]] = (_V1, _V2)
SCHEMA_VERSION: Final = len(MIGRATIONS)


@dataclass(frozen=True, slots=True)
class Migrations:
    """One schema's numbered migrations, the table recording its version and its advisory lock.

    The job store's is :data:`JOB_SCHEMA`; another part of Sealflow keeping tables in the same
    database (the identity) declares its own, so each is versioned on its own.
    """

    name: str
    steps: tuple[tuple[LiteralString, ...], ...]
    table: LiteralString
    """The table recording the versions applied."""
    lock_key: int

    @property
    def version(self) -> int:
        """The version this code brings the schema to."""
        return len(self.steps)


JOB_SCHEMA: Final = Migrations("database", MIGRATIONS, "sealflow_schema", _LOCK_KEY)


async def schema_version(
    conn: psycopg.AsyncConnection[TupleRow], migrations: Migrations = JOB_SCHEMA
) -> int:
    """The version the database is at (0 when no migration was applied)."""
    async with conn.cursor() as cur:
        await cur.execute("SELECT to_regclass(%s) IS NOT NULL", (migrations.table,))
        row = await cur.fetchone()
        if row is None or not row[0]:
            return 0
        await cur.execute(
            sql.SQL("SELECT COALESCE(MAX(version), 0) FROM {}").format(sql.SQL(migrations.table))
        )
        row = await cur.fetchone()
    return 0 if row is None else int(row[0])


async def migrate(conn: psycopg.AsyncConnection[TupleRow]) -> int:
    """Bring the job store's schema up to ``SCHEMA_VERSION``; returns the version found before.

    Raises ``StoreUnavailable`` when the database is newer than this code.
    """
    return await apply_migrations(conn, JOB_SCHEMA)


async def apply_migrations(conn: psycopg.AsyncConnection[TupleRow], migrations: Migrations) -> int:
    """Bring ``migrations``' schema up to its version; returns the version found before.

    Raises ``StoreUnavailable`` when the database is newer than this code.
    """
    create_versions = sql.SQL(
        "CREATE TABLE IF NOT EXISTS {} ("
        " version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
    ).format(sql.SQL(migrations.table))
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (migrations.lock_key,))
        await conn.execute(create_versions)
        found = await schema_version(conn, migrations)
    if found > migrations.version:
        raise StoreUnavailable(
            f"{migrations.name} schema version {found} is newer than this code's"
            f" {migrations.version}",
            reason="schema_too_new",
        )
    for version in range(found, migrations.version):
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (migrations.lock_key,))
            # Another process may have migrated while we waited for the lock.
            if await schema_version(conn, migrations) > version:
                continue
            for statement in migrations.steps[version]:
                await conn.execute(statement)
            await conn.execute(
                sql.SQL("INSERT INTO {} (version) VALUES (%s)").format(sql.SQL(migrations.table)),
                (version + 1,),
            )
    return found
