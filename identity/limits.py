"""The rate limits the pages consult, behind one async interface: in memory or in PostgreSQL.

``SignInLimits`` guards sign-ins and user-code lookups (reserve before the check, refund on
success); ``RequestLimit`` counts ``/device_authorization`` calls per address. The memory
versions wrap :mod:`identity.ratelimit` (one process); :mod:`identity.postgres.limits` keeps
the counters in the shared database, so N identity instances allow no more guesses than one.
"""

from __future__ import annotations

import math
from typing import Protocol

from identity.ratelimit import Blocked, LoginLimiter, Reservation, SlidingWindow

__all__ = ["LocalRequestLimit", "LocalSignInLimits", "RequestLimit", "SignInLimits"]


class SignInLimits(Protocol):
    """Per-user and per-address failure windows a sign-in attempt passes."""

    async def reserve(self, *, username: str | None, address: str) -> Reservation | Blocked:
        """Check the limits and count this attempt as a failure, atomically; a
        :class:`Blocked` (nothing counted) when over a limit."""
        ...

    async def refund(self, reservation: Reservation) -> None:
        """Take back a reservation whose attempt did not fail."""
        ...

    async def success(self, *, username: str) -> None:
        """A successful sign-in clears the user's failures (never the address's)."""
        ...


class RequestLimit(Protocol):
    """Calls per key within a window."""

    async def take(self, key: str) -> int:
        """Count one call for ``key`` and return 0; or, when over the limit, the seconds to
        wait (nothing counted)."""
        ...


class LocalSignInLimits:
    """:class:`SignInLimits` in this process's memory (the embedded deployment)."""

    def __init__(self, limiter: LoginLimiter) -> None:
        self.limiter = limiter

    async def reserve(self, *, username: str | None, address: str) -> Reservation | Blocked:
        """See :meth:`LoginLimiter.reserve` (one synchronous step)."""
        return self.limiter.reserve(username=username, address=address)

    async def refund(self, reservation: Reservation) -> None:
        """See :meth:`LoginLimiter.refund`."""
        self.limiter.refund(reservation)

    async def success(self, *, username: str) -> None:
        """See :meth:`LoginLimiter.success`."""
        self.limiter.success(username=username)


class LocalRequestLimit:
    """:class:`RequestLimit` on a :class:`SlidingWindow` in this process's memory."""

    def __init__(self, window: SlidingWindow) -> None:
        self.window = window

    async def take(self, key: str) -> int:
        """Count one call unless ``key`` is blocked; the seconds to wait, or 0."""
        wait = self.window.retry_after(key)
        if wait > 0:
            return max(1, math.ceil(wait))
        self.window.record(key)
        return 0
