"""Spent envelope ids: remembers every accepted envelope ``jti`` until the envelope expires.

Memory is bounded: at most ``max_entries`` live entries (about 200 bytes each, so the default
200,000 costs roughly 40 MB and covers ~660 messages/s sustained at a 300 s lifetime). When it is
full of unexpired entries it refuses new ones (:class:`SpentIdsFull`) rather than forget one,
because forgetting would let a copy through; the consumer treats that as a transient failure.
With a :class:`~broker.spent_ids_journal.SpentIdsJournal`, spent ids survive a restart.
:class:`SharedSpentIds` is what replicas of one daemon share (PostgreSQL, ``store``): the
consumer asks it after a local miss, so a copy delivered to another replica is refused too.
"""

from __future__ import annotations

import heapq
from enum import Enum
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from broker.spent_ids_journal import SpentIdsJournal

__all__ = ["SharedSpentIds", "SpentIds", "SpentIdsFull", "SpentState"]


class SpentIdsFull(Exception):
    """Every slot holds an unexpired ``jti``; the message must wait and be retried."""


class SpentState(Enum):
    """``PENDING`` while the handler runs (a broker redelivery may take it again), then ``DONE``."""

    PENDING = 1
    DONE = 2


class SharedSpentIds(Protocol):
    """Spent ids shared by every replica (``store.PgSpentEnvelopes``): one winner per id.

    There is no way to un-spend an id: an id is spent on first sight, whatever the outcome of
    its handling (issue 11.5). Either method raises when the store cannot answer; the caller
    must then not handle the message.
    """

    async def claim(self, jti: str, expires_at: float, *, now: float, redelivered: bool) -> bool:
        """Take ``jti`` until ``expires_at``; False means another delivery already took it."""
        ...

    async def complete(self, jti: str) -> None:
        """The delivery is settled: ``jti`` is refused even to a broker redelivery."""
        ...


class SpentIds:
    """Bounded map of ``jti`` → (expiry, state), pruned in expiry order with a heap."""

    __slots__ = ("_entries", "_heap", "journal", "max_entries")

    def __init__(
        self, max_entries: int = 200_000, *, journal: SpentIdsJournal | None = None
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be positive")
        self.max_entries = max_entries
        self.journal = journal
        self._entries: dict[str, tuple[float, SpentState]] = {}
        self._heap: list[tuple[float, str]] = []

    def restore(self, now: float) -> int:
        """Load the journal's spent ``jti``s (a restart must not reopen a replay window)."""
        if self.journal is None:
            return 0
        restored = 0
        for jti, expires_at, pending in self.journal.load(now):
            if len(self._entries) >= self.max_entries:
                break
            # A pending id was being handled when the process stopped: the broker's redelivery
            # of that message is let through again, a copy of it never.
            self._entries[jti] = (expires_at, SpentState.PENDING if pending else SpentState.DONE)
            heapq.heappush(self._heap, (expires_at, jti))
            restored += 1
        return restored

    def flush(self, now: float) -> None:
        """Make journaled entries durable; compact the journal when it has grown enough."""
        if self.journal is None:
            return
        if self.journal.needs_compaction:
            self.prune(now)
            self.journal.compact(
                (jti, expires_at, state is SpentState.PENDING)
                for jti, (expires_at, state) in self._entries.items()
            )
        else:
            self.journal.flush()

    def __len__(self) -> int:
        return len(self._entries)

    def state(self, jti: str, now: float) -> SpentState | None:
        """The state of ``jti`` if it is remembered and not yet expired."""
        entry = self._entries.get(jti)
        if entry is None or entry[0] < now:
            return None
        return entry[1]

    def claim(self, jti: str, expires_at: float, now: float) -> None:
        """Spend ``jti`` on first sight: pending (being handled) until ``expires_at``."""
        self.prune(now)
        known = jti in self._entries
        if not known and len(self._entries) >= self.max_entries:
            raise SpentIdsFull(f"the spent-id cache holds {self.max_entries} unexpired envelopes")
        self._entries[jti] = (expires_at, SpentState.PENDING)
        heapq.heappush(self._heap, (expires_at, jti))
        if self.journal is not None and not known:
            self.journal.append(jti, expires_at, pending=True)

    def complete(self, jti: str) -> None:
        """Its delivery is settled: the ``jti`` may never be taken again, not even redelivered."""
        entry = self._entries.get(jti)
        if entry is not None:
            self._entries[jti] = (entry[0], SpentState.DONE)
            if self.journal is not None:
                self.journal.append(jti, entry[0])

    def prune(self, now: float) -> int:
        """Drop expired entries; returns how many were dropped."""
        heap, entries, dropped = self._heap, self._entries, 0
        while heap and heap[0][0] < now:
            expires_at, jti = heapq.heappop(heap)
            entry = entries.get(jti)
            # The heap holds a second pair for a jti claimed again on a redelivery.
            if entry is not None and entry[0] == expires_at:
                del entries[jti]
                dropped += 1
        return dropped
