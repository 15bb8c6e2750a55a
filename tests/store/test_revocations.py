"""Revocations in PostgreSQL: durable, and loaded by a process that starts later."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from store_testing import reset_postgres

from schemas import Revocation
from store import PgRevocations


@pytest.fixture
async def revocations(postgres_url: str) -> AsyncIterator[PgRevocations]:
    reset_postgres(postgres_url)
    opened = await PgRevocations.open(postgres_url)
    try:
        yield opened
    finally:
        await opened.close()


def _revocation(value: str, *, lasts: timedelta | None) -> Revocation:
    issued = datetime.now(UTC) - timedelta(seconds=1)
    return Revocation(
        revocation_id=uuid.uuid4().hex,
        kind="sub",
        value=value,
        reason="test",
        issued_at=issued,
        until=None if lasts is None else issued + lasts,
    )


async def test_a_revocation_is_loaded_by_a_process_that_starts_later(
    revocations: PgRevocations, postgres_url: str
) -> None:
    """Recorded by one process, seen by a fresh one; a repeat is recorded once."""
    forever = _revocation("mallory", lasts=None)
    hour = _revocation("eve", lasts=timedelta(hours=1))
    assert await revocations.add(forever) is True
    assert await revocations.add(hour) is True
    assert await revocations.add(forever) is False
    later = await PgRevocations.open(postgres_url)
    try:
        assert await later.load(time.time()) == [forever, hour]
    finally:
        await later.close()


async def test_lapsed_revocations_are_not_loaded_and_are_pruned(
    revocations: PgRevocations,
) -> None:
    """A revocation past its ``until`` is neither applied at start nor kept."""
    short = _revocation("trent", lasts=timedelta(seconds=30))
    assert await revocations.add(short)
    assert await revocations.load(time.time()) == [short]
    in_a_minute = time.time() + 60
    assert await revocations.load(in_a_minute) == []
    assert await revocations.prune(in_a_minute) == 1
    assert await revocations.load(time.time()) == []
