"""A receiver of ``sealflow.control`` for tests: a real service runtime on the broker whose
revocation list hands each revocation it applies to the test, so tests wait on that event."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from broker import BrokerSettings, RevocationList, ServiceRuntime
from schemas import Revocation


class WatchedRevocations(RevocationList):
    """A receiver's revocation list that also queues every revocation it applies."""

    def __init__(self) -> None:
        """An in-memory list (no journal) with an empty queue of applied revocations."""
        super().__init__()
        self.applied: asyncio.Queue[Revocation] = asyncio.Queue()

    def add(self, revocation: Revocation) -> None:
        """Apply ``revocation``, then hand it to the test."""
        super().add(revocation)
        self.applied.put_nowait(revocation)

    async def next(self, timeout: float = 10.0) -> Revocation:
        """The next revocation the receiver applies, within ``timeout`` seconds."""
        return await asyncio.wait_for(self.applied.get(), timeout)


@asynccontextmanager
async def control_receiver(
    service: str, settings: BrokerSettings
) -> AsyncIterator[WatchedRevocations]:
    """Run ``service``'s runtime (its control subscription included) until the block ends."""
    runtime = ServiceRuntime(service, settings)
    watched = WatchedRevocations()
    runtime.revocations = watched
    runtime.opener.revocations = watched
    await runtime.start()
    try:
        yield watched
    finally:
        await runtime.stop()
