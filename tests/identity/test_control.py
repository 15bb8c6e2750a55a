"""The identity's revocation outbox: handlers never wait on the broker, a revocation is
retried until the broker takes it, and one that has lapsed meanwhile is dropped."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from identity_testing import FakeClock

from broker import PublishFailed
from identity import RevocationOutbox, new_revocation
from schemas import Revocation


@dataclass
class FlakySink:
    """Refuses the first ``failures`` publishes, like a broker that is down, then takes them."""

    failures: int
    sent: list[Revocation] = field(default_factory=list)
    tries: int = 0

    async def publish(self, revocation: Revocation) -> None:
        """Record the revocation, or fail while ``failures`` remain."""
        self.tries += 1
        if self.tries <= self.failures:
            raise PublishFailed("broker down (test)")
        self.sent.append(revocation)


async def test_a_revocation_is_retried_until_the_broker_takes_it() -> None:
    """Three failed publishes, then the broker takes it: delivered once, nothing lost."""
    sink = FlakySink(failures=3)
    outbox = RevocationOutbox(sink, retry_delay=0.01)
    outbox.start()
    try:
        outbox.revoke("sub", "mallory", "user disabled", until=None)
        await asyncio.wait_for(outbox.drain(), 10)
    finally:
        await outbox.close()
    assert sink.tries == 4
    assert [(r.kind, r.value) for r in sink.sent] == [("sub", "mallory")]


async def test_a_revocation_that_lapsed_while_the_broker_was_down_is_dropped() -> None:
    """A revocation that lapsed while the broker was away is not retried forever."""
    clock = FakeClock()
    sink = FlakySink(failures=1)
    outbox = RevocationOutbox(sink, retry_delay=0.01, clock=clock)
    outbox.start()
    try:
        outbox.revoke("jti", "a" * 32, "access token revoked", until=clock.now + 60)
        clock.advance(3600)  # lapsed by the time its first publish fails
        await asyncio.wait_for(outbox.drain(), 10)
    finally:
        await outbox.close()
    assert (sink.tries, sink.sent) == (1, [])


def test_a_revocation_is_checked_as_receivers_check_it() -> None:
    """Revocations are built with the receivers' own schema, with a fresh id."""
    revocation = new_revocation("kid", "key-1", "compromised", until=None)
    assert (revocation.kind, revocation.value, revocation.until) == ("kid", "key-1", None)
    assert len(revocation.revocation_id) == 32
