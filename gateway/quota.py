"""The per-user quota on jobs in flight (queued or processing), checked at upload.

One user's backlog cannot grow without bound: an upload that would take its user past the
limit is refused ``429 quota_exceeded`` with ``Retry-After`` before any job is recorded.
Within one gateway process a user's uploads are counted and recorded one at a time, so two
concurrent uploads cannot both slip under the limit; gateways sharing one store each enforce
it without a lock between them, so together they may overshoot by one upload each.
"""

from __future__ import annotations

import asyncio
import weakref

from gateway.errors import TooManyRequests
from gateway.submission import jobs_in_flight
from store import JobStore

__all__ = ["JobQuota"]


class JobQuota:
    """At most ``limit`` jobs queued or processing per owner; ``retry_after`` seconds to wait."""

    def __init__(self, limit: int, *, retry_after: int) -> None:
        self.limit = limit
        self.retry_after = retry_after
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def lock(self, owner: str) -> asyncio.Lock:
        """The lock under which ``owner``'s uploads are counted and recorded, one at a time."""
        lock = self._locks.get(owner)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[owner] = lock
        return lock

    async def check(self, store: JobStore, owner: str, *, adding: int) -> None:
        """:class:`TooManyRequests` if ``adding`` more jobs would take ``owner`` past the limit."""
        in_flight = await jobs_in_flight(store, owner, at_most=self.limit)
        if in_flight + adding > self.limit:
            raise TooManyRequests(
                f"you have {in_flight} jobs queued or processing and may have at most "
                f"{self.limit}; {adding} more do not fit. Try again when some have finished",
                reason="quota_exceeded",
                headers={"Retry-After": str(self.retry_after)},
            )
