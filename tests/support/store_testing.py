"""Store test support: a fresh PostgreSQL database per test run, and backend-neutral probes.

The server is ``SEALFLOW_TEST_POSTGRES_URL`` (default: the local one, user postgres, trust
auth). ``postgres_url`` creates a database with a unique name once per run and drops it at
the end; a server that does not answer fails the tests that need it, saying so.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from identity import AnyIdentityStore, PgIdentityStore
from store import JobStore, PgJobStore, SqliteJobStore

__all__ = [
    "BACKENDS",
    "fresh_database",
    "identity_rows",
    "index_rows",
    "postgres_server",
    "postgres_url",
    "reset_identity",
    "reset_postgres",
]

BACKENDS: Final = ("sqlite", "postgresql")
_DEFAULT_SERVER: Final = "postgresql://postgres@127.0.0.1:5432/postgres"
_TABLES: Final = "jobs, processed_keys, blobs, spent_envelopes, revocations"
_IDENTITY_TABLES: Final = (
    "identity.names, identity.users, identity.clients, identity.codes,"
    " identity.refresh_tokens, identity.revoked_families, identity.access_tokens,"
    " identity.revoked_jtis, identity.device_codes, identity.attempts"
)


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def _answers(server: str) -> str | None:
    """None if the server takes a query, else why not."""
    try:
        with psycopg.connect(server, connect_timeout=10) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        return str(exc).strip()
    return None


def _start_local_cluster() -> None:
    """Start this machine's PostgreSQL cluster the way it was started (Debian's tools)."""
    clusters = sorted(Path("/etc/postgresql").glob("*/main"))
    if not clusters or shutil.which("pg_ctlcluster") is None:
        return
    version = clusters[-1].parent.name
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"],
        check=False,
        timeout=60,
        capture_output=True,
    )


def postgres_server() -> str:
    """The server's admin URL; a local server that is down is started, else the test fails
    saying why (never a silent skip)."""
    server = os.environ.get("SEALFLOW_TEST_POSTGRES_URL", _DEFAULT_SERVER)
    problem = _answers(server)
    if problem is not None and urlsplit(server).hostname in {"127.0.0.1", "localhost", "::1"}:
        _start_local_cluster()
        problem = _answers(server)
    if problem is not None:
        pytest.fail(
            f"PostgreSQL does not answer at {urlsplit(server).netloc} ({problem}); start it, "
            "or set SEALFLOW_TEST_POSTGRES_URL to a server where this user may create databases",
            pytrace=False,
        )
    return server


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """A new, empty database with a unique name on the test server; dropped afterwards."""
    server = postgres_server()
    name = f"sealflow_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(server, autocommit=True, connect_timeout=10) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield _with_database(server, name)
    finally:
        with psycopg.connect(server, autocommit=True, connect_timeout=10) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of a database created for this test run (dropped when the run ends)."""
    with fresh_database() as url:
        yield url


def reset_postgres(url: str) -> None:
    """Empty every table of the test database (its schema stays), so each test starts clean."""
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        row = conn.execute("SELECT to_regclass('jobs') IS NOT NULL").fetchone()
        if row is not None and row[0]:
            conn.execute(f"TRUNCATE {_TABLES} CASCADE")


async def index_rows(store: JobStore) -> int:
    """How many chunks the store's full-text index holds (FTS5 rows, or tsvector rows)."""
    if isinstance(store, SqliteJobStore):
        with sqlite3.connect(store.path) as db:
            return int(db.execute("SELECT count(*) FROM chunks_fts").fetchone()[0])
    assert isinstance(store, PgJobStore)
    async with store.pool.connection() as conn:
        cur = await conn.execute("SELECT count(*) FROM result_chunks")
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


def reset_identity(url: str) -> None:
    """Empty the identity's tables of the test database (its schema stays)."""
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        row = conn.execute("SELECT to_regclass('identity.users') IS NOT NULL").fetchone()
        if row is not None and row[0]:
            conn.execute(f"TRUNCATE {_IDENTITY_TABLES}")


async def identity_rows(store: AnyIdentityStore, query: str) -> list[tuple[object, ...]]:
    """The rows of a read-only ``query`` naming the identity's tables unqualified, on either
    backend (to check what is stored at rest: hashes, expiry times)."""
    if isinstance(store, PgIdentityStore):
        async with store.pool.connection() as conn, conn.transaction():
            await conn.execute("SET LOCAL search_path TO identity")
            cur = await conn.execute(query.encode())
            return list(await cur.fetchall())
    async with store._db.execute(query) as cursor:
        return [tuple(row) for row in await cursor.fetchall()]
