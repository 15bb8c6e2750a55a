"""The PostgreSQL schema: migrated once however many processes start, never downgraded."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from store_testing import fresh_database

from store import PgJobStore, StoreUnavailable
from store.postgres.migrations import SCHEMA_VERSION


async def test_processes_starting_together_migrate_once() -> None:
    """Five stores opened at once on an empty database: one applies each migration."""
    with fresh_database() as url:
        stores = await asyncio.gather(*(PgJobStore.open(url, max_connections=1) for _ in range(5)))
        for store in stores:
            await store.close()
        with psycopg.connect(url) as conn:
            versions = [row[0] for row in conn.execute("SELECT version FROM sealflow_schema")]
            tables = {
                row[0]
                for row in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                )
            }
    assert versions == list(range(1, SCHEMA_VERSION + 1))
    assert {"jobs", "job_events", "results", "result_chunks", "processed_keys"} <= tables
    assert {"blobs", "blob_parts", "spent_envelopes", "revocations"} <= tables


async def test_a_newer_schema_is_refused() -> None:
    """Code older than the database must not write to it: ``schema_too_new``."""
    with fresh_database() as url:
        await (await PgJobStore.open(url)).close()
        with psycopg.connect(url) as conn:
            conn.execute("INSERT INTO sealflow_schema (version) VALUES (99)")
        with pytest.raises(StoreUnavailable) as info:
            await PgJobStore.open(url)
    assert info.value.reason == "schema_too_new"


async def test_without_upgrade_an_old_schema_is_refused_with_the_command_to_run() -> None:
    """A daemon told not to migrate names ``sealflow db upgrade`` instead of creating tables."""
    with fresh_database() as url:
        with pytest.raises(StoreUnavailable) as info:
            await PgJobStore.open(url, upgrade=False)
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT to_regclass('jobs')").fetchone()
    assert info.value.reason == "schema_mismatch"
    assert "sealflow db upgrade" in info.value.detail
    assert row == (None,)
