"""Fair shares of the parse slots: one owner's backlog cannot hold back another owner's job.

Start-time fair queueing over owners: an owner's n-th waiting job gets round ``start + n``,
where ``start`` is the round of the job granted last when the owner became active; a freed
slot goes to the waiting job of the lowest round (ties: first come). So a user with a
thousand queued documents and a user with one take turns, and a newcomer waits at most for
the next slot to free up, never for the backlog.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

__all__ = ["FairSlots"]


@dataclass(order=True)
class _Waiter:
    round: int
    seq: int
    owner: str = field(compare=False)
    granted: asyncio.Future[None] = field(compare=False)


class FairSlots:
    """``slots`` places shared by owners in turn; use ``async with fair.slot(owner):``."""

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError("FairSlots needs at least one slot")
        self._free = slots
        self._waiting: list[_Waiter] = []
        self._seq = itertools.count()
        self._virtual_round = 0
        self._next_round: dict[str, int] = {}
        self._active: dict[str, int] = {}

    @property
    def waiting(self) -> int:
        """How many jobs wait for a slot."""
        return sum(1 for waiter in self._waiting if not waiter.granted.done())

    @asynccontextmanager
    async def slot(self, owner: str) -> AsyncIterator[None]:
        """Hold one slot for ``owner``'s job, waiting for its fair turn."""
        await self._acquire(owner)
        try:
            yield
        finally:
            self._release(owner)

    async def _acquire(self, owner: str) -> None:
        start = self._next_round.setdefault(owner, self._virtual_round)
        self._next_round[owner] = start + 1
        self._active[owner] = self._active.get(owner, 0) + 1
        if self._free > 0 and not self._waiting:
            self._free -= 1
            self._virtual_round = max(self._virtual_round, start)
            return
        waiter = _Waiter(start, next(self._seq), owner, asyncio.get_running_loop().create_future())
        heapq.heappush(self._waiting, waiter)
        try:
            await waiter.granted
        except asyncio.CancelledError:
            if waiter.granted.done() and not waiter.granted.cancelled():
                self._release(owner)  # granted just as the caller gave up: pass the slot on
            else:
                if waiter in self._waiting:
                    self._waiting.remove(waiter)
                    heapq.heapify(self._waiting)
                self._forget(owner)
            raise

    def _release(self, owner: str) -> None:
        self._forget(owner)
        while self._waiting:
            waiter = heapq.heappop(self._waiting)
            # A cancelled waiter whose task has not run its clean-up yet is skipped here.
            if not waiter.granted.done():
                self._virtual_round = max(self._virtual_round, waiter.round)
                waiter.granted.set_result(None)
                return
        self._free += 1

    def _forget(self, owner: str) -> None:
        """One job of ``owner`` is over; an owner with none left starts afresh next time."""
        left = self._active[owner] - 1
        if left:
            self._active[owner] = left
        else:
            del self._active[owner]
            del self._next_round[owner]
