"""Revocations shared through a store (PostgreSQL on several hosts): enforced at once, added to
the store, offered again when the store was away, and loaded by a process that starts later."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import pytest

from broker import RevocationList
from schemas import Revocation

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class _Store:
    """An in-memory stand-in for ``store.PgRevocations`` that can be made to fail."""

    def __init__(self) -> None:
        self.rows: dict[str, Revocation] = {}
        self.away = False

    async def add(self, revocation: Revocation) -> bool:
        """Keep ``revocation``, unless the store is away."""
        if self.away:
            raise ConnectionError("database away")
        new = revocation.revocation_id not in self.rows
        self.rows[revocation.revocation_id] = revocation
        return new

    async def load(self, now: float) -> list[Revocation]:
        """Every revocation kept (none of these lapse)."""
        if self.away:
            raise ConnectionError("database away")
        return list(self.rows.values())


def _revocation(value: str) -> Revocation:
    return Revocation(
        revocation_id=secrets.token_hex(16),
        kind="sub",
        value=value,
        reason="test",
        issued_at=NOW,
    )


async def test_what_one_process_applies_a_later_one_loads_from_the_store() -> None:
    """Applied here, added to the store once, enforced by a list that starts afterwards."""
    store = _Store()
    first = RevocationList(shared=store)
    revocation = _revocation("mallory")
    first.add(revocation)
    first.add(revocation)
    assert await first.share() == 1
    assert await first.share() == 0
    later = RevocationList(shared=store)
    assert await later.restore_shared(NOW.timestamp()) == 1
    assert later.revoked(kid="k", jti="a" * 32, sub="mallory", now=NOW.timestamp()) == "sub"
    assert await later.share() == 0  # loaded, not re-added


async def test_a_revocation_the_store_missed_is_enforced_and_offered_again() -> None:
    """The store away: the revocation holds in memory at once and is added once it is back."""
    store = _Store()
    revocations = RevocationList(shared=store)
    store.away = True
    revocations.add(_revocation("mallory"))
    assert revocations.revoked(kid="k", jti="a" * 32, sub="mallory", now=NOW.timestamp()) == "sub"
    with pytest.raises(ConnectionError):
        await revocations.share()
    assert revocations.unshared == 1
    store.away = False
    assert await revocations.share() == 1
    assert revocations.unshared == 0
    assert [r.value for r in store.rows.values()] == ["mallory"]


def test_without_a_store_nothing_waits_to_be_shared() -> None:
    """The embedded default keeps no queue of revocations for a store it does not have."""
    revocations = RevocationList()
    revocations.add(_revocation("mallory"))
    assert revocations.unshared == 0
