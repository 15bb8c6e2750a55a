"""The audit log's anchor table in PostgreSQL, as numbered migrations of its own.

One row per audit log (``log_id``) holding its newest signed checkpoint line. Versioned apart
from the job store (``sealflow_audit_schema``, its own advisory lock) so the audit daemon
needs only this table, and a trigger refuses any update that would move a row's ``seq`` back
or rewrite the checkpoint at the same ``seq``, whoever sends it. Never edit a released entry.
"""

from __future__ import annotations

from typing import Final, LiteralString

import psycopg

from store.backends import Upgrade, backend_of
from store.postgres.database import DEFAULT_CONNECT_TIMEOUT, unavailable
from store.postgres.locks import AUDIT_SCHEMA_LOCK
from store.postgres.migrations import Migrations, apply_migrations

__all__ = ["AUDIT_ANCHOR_SCHEMA", "upgrade_audit_anchor_schema"]

_V1: Final[tuple[LiteralString, ...]] = (
    """
    CREATE TABLE audit_anchors (
        log_id      TEXT PRIMARY KEY CHECK (octet_length(log_id) BETWEEN 1 AND 512),
        seq         BIGINT NOT NULL CHECK (seq >= 1),
        checkpoint  TEXT NOT NULL CHECK (octet_length(checkpoint) <= 4096),
        updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE FUNCTION audit_anchors_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.log_id <> OLD.log_id OR NEW.seq < OLD.seq
           OR (NEW.seq = OLD.seq AND NEW.checkpoint <> OLD.checkpoint) THEN
            RAISE EXCEPTION 'audit anchor % may only move forward (seq % to %)',
                OLD.log_id, OLD.seq, NEW.seq
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END
    $$
    """,
    """
    CREATE TRIGGER audit_anchors_forward_only BEFORE UPDATE ON audit_anchors
    FOR EACH ROW EXECUTE FUNCTION audit_anchors_forward_only()
    """,
)

AUDIT_ANCHOR_SCHEMA: Final = Migrations(
    "audit anchor", (_V1,), "sealflow_audit_schema", AUDIT_SCHEMA_LOCK
)


async def upgrade_audit_anchor_schema(database_url: str | None) -> Upgrade | None:
    """Create or update the anchor table (the audit daemon at start, ``sealflow db upgrade``);
    None for the embedded backend, whose anchor is a file.

    Raises ``StoreUnavailable`` when the server cannot be used or its schema is newer.
    """
    if backend_of(database_url) != "postgresql":
        return None
    assert database_url is not None
    connect = psycopg.AsyncConnection.connect(
        database_url, connect_timeout=int(DEFAULT_CONNECT_TIMEOUT)
    )
    async with unavailable(), await connect as conn:
        found = await apply_migrations(conn, AUDIT_ANCHOR_SCHEMA)
    return Upgrade("postgresql (audit anchor)", found, AUDIT_ANCHOR_SCHEMA.version)
