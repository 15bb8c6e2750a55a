"""The advisory-lock keys of every PostgreSQL module are distinct."""

from __future__ import annotations

from store.postgres import locks


def test_no_two_single_key_locks_share_a_key() -> None:
    """Two operations sharing a key would serialize each other for nothing (the identity's
    migrations and job creation once did)."""
    keys = {name: getattr(locks, name) for name in locks.__all__ if name != "BLOB_LOCK_SPACE"}
    assert len(set(keys.values())) == len(keys), keys
