"""Spent envelope ids in PostgreSQL, shared by replicas: the replay cache's rules across hosts."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator

import pytest
from store_testing import reset_postgres

from store import PgSpentEnvelopes, StoreUnavailable


@pytest.fixture
async def replicas(postgres_url: str) -> AsyncIterator[tuple[PgSpentEnvelopes, PgSpentEnvelopes]]:
    """Two replicas' views of one database, each with its own pool."""
    reset_postgres(postgres_url)
    one = await PgSpentEnvelopes.open(postgres_url)
    two = await PgSpentEnvelopes.open(postgres_url)
    try:
        yield one, two
    finally:
        await one.close()
        await two.close()


def _jti() -> str:
    return secrets.token_hex(16)


async def test_an_envelope_done_on_one_replica_is_a_replay_on_another(
    replicas: tuple[PgSpentEnvelopes, PgSpentEnvelopes],
) -> None:
    """Captured after B1 handled it and delivered to B2 (even flagged redelivered): refused."""
    b1, b2 = replicas
    jti, now = _jti(), time.time()
    assert await b1.claim(jti, now + 300, now=now, redelivered=False) is True
    await b1.complete(jti)
    assert await b2.claim(jti, now + 300, now=now, redelivered=False) is False
    assert await b2.claim(jti, now + 300, now=now, redelivered=True) is False
    assert await b1.claim(jti, now + 300, now=now, redelivered=False) is False


async def test_a_pending_envelope_goes_only_to_a_broker_redelivery(
    replicas: tuple[PgSpentEnvelopes, PgSpentEnvelopes],
) -> None:
    """B1 died mid-work: the broker's redelivery to B2 takes it; a second copy does not."""
    b1, b2 = replicas
    jti, now = _jti(), time.time()
    assert await b1.claim(jti, now + 300, now=now, redelivered=False) is True
    assert await b2.claim(jti, now + 300, now=now, redelivered=False) is False
    assert await b2.claim(jti, now + 300, now=now, redelivered=True) is True
    await b2.complete(jti)
    assert await b1.claim(jti, now + 300, now=now, redelivered=True) is False


async def test_a_failed_handling_never_unspends_an_id(
    replicas: tuple[PgSpentEnvelopes, PgSpentEnvelopes],
) -> None:
    """Issue 11.5: a pending id stays spent to every copy whatever the handling's outcome; the
    store has no way to release one (it used to, and a retried copy then went through)."""
    b1, b2 = replicas
    jti, now = _jti(), time.time()
    assert await b1.claim(jti, now + 300, now=now, redelivered=False)
    assert not hasattr(b1, "release")
    assert await b2.claim(jti, now + 300, now=now, redelivered=False) is False
    assert await b1.claim(jti, now + 300, now=now, redelivered=False) is False


async def test_ids_are_kept_until_exp_then_forgotten(
    replicas: tuple[PgSpentEnvelopes, PgSpentEnvelopes],
) -> None:
    """Spent ids, pending or done, are listed until they expire; prune drops only expired ones."""
    b1, b2 = replicas
    now = time.time()
    old, live, held = _jti(), _jti(), _jti()
    for jti, exp in ((old, now + 10), (live, now + 300)):
        assert await b1.claim(jti, exp, now=now, redelivered=False)
        await b1.complete(jti)
    assert await b1.claim(held, now + 400, now=now, redelivered=False)
    later = now + 60
    assert await b2.spent(later) == [
        (live, pytest.approx(now + 300), False),
        (held, pytest.approx(now + 400), True),
    ]
    assert await b2.prune(later) == 1
    assert await b2.claim(old, later + 300, now=later, redelivered=False) is True


async def test_concurrent_claims_on_two_replicas_have_one_winner(
    replicas: tuple[PgSpentEnvelopes, PgSpentEnvelopes],
) -> None:
    """The same envelope delivered to both replicas at once is taken by exactly one."""
    b1, b2 = replicas
    now = time.time()
    for _ in range(20):
        jti = _jti()
        outcomes = await asyncio.gather(
            b1.claim(jti, now + 300, now=now, redelivered=False),
            b2.claim(jti, now + 300, now=now, redelivered=False),
        )
        assert sorted(outcomes) == [False, True]


async def test_malformed_ids_are_refused(
    replicas: tuple[PgSpentEnvelopes, PgSpentEnvelopes],
) -> None:
    """A jti outside the envelope alphabet or too long never reaches the database."""
    b1, _ = replicas
    now = time.time()
    for bad in ("", "a" * 129, "x y", "é", "a'; --"):
        with pytest.raises(ValueError, match="jti"):
            await b1.claim(bad, now + 1, now=now, redelivered=False)
    with pytest.raises(ValueError, match="finite"):
        await b1.claim(_jti(), float("nan"), now=now, redelivered=False)


async def test_an_unreachable_server_is_store_unavailable() -> None:
    """A daemon configured for a server that refuses gets a clear error, not a driver one."""
    with pytest.raises(StoreUnavailable) as info:
        await PgSpentEnvelopes.open(
            "postgresql://nobody@127.0.0.1:1/none?connect_timeout=1", timeout=0.5
        )
    assert info.value.reason == "database_down"
