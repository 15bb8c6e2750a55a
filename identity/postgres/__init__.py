"""The identity's state in PostgreSQL (``SEALFLOW_DATABASE_URL`` set): users, clients, codes,
refresh families, access tokens, device codes and the rate-limit counters, shared by every
identity instance."""

from __future__ import annotations

from identity.postgres.limits import PgRequestLimit, PgSignInLimits
from identity.postgres.schema import IDENTITY_SCHEMA
from identity.postgres.store import PgIdentityStore

__all__ = ["IDENTITY_SCHEMA", "PgIdentityStore", "PgRequestLimit", "PgSignInLimits"]
