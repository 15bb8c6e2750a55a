"""The identity's tables in PostgreSQL (schema ``identity``), as numbered migrations.

Versioned on their own (``sealflow_identity_schema``, under their own advisory lock) next to
the job store's, in the database ``SEALFLOW_DATABASE_URL`` names. Never edit a released
entry: append a new one.
"""

from __future__ import annotations

from typing import Final, LiteralString

from store.postgres.locks import IDENTITY_SCHEMA_LOCK
from store.postgres.migrations import Migrations

__all__ = ["IDENTITY_SCHEMA"]

_V1: Final[tuple[LiteralString, ...]] = (
    "CREATE SCHEMA IF NOT EXISTS identity",
    """
    CREATE TABLE identity.names (
        folded  TEXT PRIMARY KEY,
        name    TEXT NOT NULL,
        kind    TEXT NOT NULL CHECK (kind IN ('user', 'client'))
    )
    """,
    """
    CREATE TABLE identity.users (
        username       TEXT PRIMARY KEY,
        password_hash  TEXT NOT NULL,
        role           TEXT NOT NULL,
        disabled       BOOLEAN NOT NULL DEFAULT FALSE,
        created_at     DOUBLE PRECISION NOT NULL
    )
    """,
    """
    CREATE TABLE identity.clients (
        client_id      TEXT PRIMARY KEY,
        secret_hash    TEXT,
        redirect_uris  TEXT NOT NULL,
        grant_types    TEXT NOT NULL,
        role           TEXT,
        created_at     DOUBLE PRECISION NOT NULL
    )
    """,
    """
    CREATE TABLE identity.codes (
        code_hash       TEXT PRIMARY KEY,
        client_id       TEXT NOT NULL,
        redirect_uri    TEXT NOT NULL,
        code_challenge  TEXT,
        nonce           TEXT,
        scope           TEXT NOT NULL,
        username        TEXT NOT NULL,
        auth_time       BIGINT NOT NULL,
        family_id       TEXT NOT NULL,
        expires_at      DOUBLE PRECISION NOT NULL,
        used            BOOLEAN NOT NULL DEFAULT FALSE
    )
    """,
    "CREATE INDEX codes_expiry ON identity.codes (expires_at)",
    """
    CREATE TABLE identity.refresh_tokens (
        token_hash  TEXT PRIMARY KEY,
        family_id   TEXT NOT NULL,
        client_id   TEXT NOT NULL,
        username    TEXT NOT NULL,
        scope       TEXT NOT NULL,
        auth_time   BIGINT NOT NULL,
        expires_at  DOUBLE PRECISION NOT NULL,
        used        BOOLEAN NOT NULL DEFAULT FALSE
    )
    """,
    "CREATE INDEX refresh_tokens_family ON identity.refresh_tokens (family_id)",
    "CREATE INDEX refresh_tokens_user ON identity.refresh_tokens (username)",
    """
    CREATE TABLE identity.revoked_families (
        family_id   TEXT PRIMARY KEY,
        revoked_at  DOUBLE PRECISION NOT NULL
    )
    """,
    """
    CREATE TABLE identity.access_tokens (
        jti         TEXT PRIMARY KEY,
        family_id   TEXT NOT NULL,
        expires_at  DOUBLE PRECISION NOT NULL
    )
    """,
    "CREATE INDEX access_tokens_family ON identity.access_tokens (family_id)",
    "CREATE INDEX access_tokens_expiry ON identity.access_tokens (expires_at)",
    """
    CREATE TABLE identity.revoked_jtis (
        jti         TEXT PRIMARY KEY,
        expires_at  DOUBLE PRECISION NOT NULL
    )
    """,
    "CREATE INDEX revoked_jtis_expiry ON identity.revoked_jtis (expires_at)",
    """
    CREATE TABLE identity.device_codes (
        device_hash     TEXT PRIMARY KEY,
        user_code_hash  TEXT NOT NULL UNIQUE,
        client_id       TEXT NOT NULL,
        scope           TEXT NOT NULL,
        status          TEXT NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'approved', 'denied', 'spent')),
        username        TEXT,
        auth_time       BIGINT,
        family_id       TEXT NOT NULL,
        interval        DOUBLE PRECISION NOT NULL,
        last_poll       DOUBLE PRECISION,
        expires_at      DOUBLE PRECISION NOT NULL,
        address         TEXT NOT NULL
    )
    """,
    "CREATE INDEX device_codes_expiry ON identity.device_codes (expires_at)",
    "CREATE INDEX device_codes_client ON identity.device_codes (client_id, status)",
    "CREATE INDEX device_codes_address ON identity.device_codes (address, status)",
    # Sign-in and device-request failures, one row per counted attempt (identity.postgres.limits).
    """
    CREATE TABLE identity.attempts (
        id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        scope  TEXT NOT NULL,
        key    TEXT NOT NULL,
        at     DOUBLE PRECISION NOT NULL
    )
    """,
    "CREATE INDEX attempts_key ON identity.attempts (scope, key, at)",
    "CREATE INDEX attempts_at ON identity.attempts (scope, at)",
)

IDENTITY_SCHEMA: Final = Migrations(
    "identity", (_V1,), "sealflow_identity_schema", IDENTITY_SCHEMA_LOCK
)
"""The identity's migrations (``sealflow db upgrade`` and every identity start apply them)."""
