"""Sign-in rate limiting: a sliding window of failures per key, in bounded memory.

Each key (a username, a client address) keeps the times of its last ``limit`` failures; it is
blocked while ``limit`` of them fall inside the window. An attempt *reserves* its failure
before the password is checked (one synchronous step, so concurrent guesses cannot all pass
the check while the first ones are still hashing) and a success refunds it. At most
``max_keys`` keys are kept; the least recently touched one is forgotten first, so memory stays
bounded under a flood of distinct names (the per-address limit still holds for one attacker,
see docs/security.md). An IPv6 peer is counted by its /64, the block one host usually gets,
so that walking through its own addresses does not reset the limits.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Blocked", "LoginLimiter", "Reservation", "SlidingWindow", "address_key"]


def address_key(address: str) -> str:
    """The key a peer address is limited under: an IPv6 address by its /64 (an IPv4-mapped one
    as the IPv4 address), anything else as it is."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class SlidingWindow:
    """Failures per key within the last ``window`` seconds; blocked at ``limit``."""

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1 or window <= 0 or max_keys < 1:
            raise ValueError("limit, window and max_keys must be positive")
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._failures)

    def _live(self, key: str, now: float) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` may try again; 0 when it is not blocked."""
        now = self._clock()
        times = self._live(key, now)
        if times is None or len(times) < self.limit:
            return 0.0
        return max(times[0] + self.window - now, 0.0)

    def record(self, key: str, *, now: float | None = None) -> float:
        """Count one failure for ``key`` (at ``now``, default the clock's time); returns the
        time it is counted at, to :meth:`forget` it."""
        now = self._clock() if now is None else now
        times = self._live(key, now)
        if times is None:
            times = deque(maxlen=self.limit)
            self._failures[key] = times
            while len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)
        else:
            self._failures.move_to_end(key)
        times.append(now)
        return now

    def forget(self, key: str, at: float) -> None:
        """Take back one failure of ``key`` counted at ``at`` (a refunded reservation)."""
        times = self._failures.get(key)
        if times is None:
            return
        try:
            times.remove(at)
        except ValueError:
            return  # already slid out of the window or pushed out by newer failures
        if not times:
            del self._failures[key]

    def reset(self, key: str) -> None:
        """Forget the failures of ``key`` (after a successful sign-in)."""
        self._failures.pop(key, None)


@dataclass(frozen=True, slots=True)
class Blocked:
    """Why a sign-in is refused before the password is checked."""

    scope: str
    """``user`` or ``address``."""
    retry_after: int


@dataclass(frozen=True, slots=True)
class Reservation:
    """A failure counted in advance for one attempt: kept if it fails, refunded if not."""

    username: str | None
    """The case-folded username the attempt counts against, if any."""
    address: str
    """The address's key (see :func:`address_key`)."""
    at: float


class LoginLimiter:
    """The two windows a sign-in passes: one per username, one per client address."""

    def __init__(
        self,
        *,
        per_user: int,
        per_address: int,
        window: float,
        max_keys: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.users = SlidingWindow(per_user, window, max_keys=max_keys, clock=clock)
        self.addresses = SlidingWindow(per_address, window, max_keys=max_keys, clock=clock)

    def check(self, *, username: str | None, address: str) -> Blocked | None:
        """A :class:`Blocked` when the address or the user is over its limit, else None."""
        wait = self.addresses.retry_after(address_key(address))
        if wait > 0:
            return Blocked("address", max(1, math.ceil(wait)))
        if username is not None:
            wait = self.users.retry_after(username.casefold())
            if wait > 0:
                return Blocked("user", max(1, math.ceil(wait)))
        return None

    def reserve(self, *, username: str | None, address: str) -> Reservation | Blocked:
        """Check the limits and count this attempt as a failure in one step (no await between).

        A :class:`Blocked` when over a limit (nothing counted); else the :class:`Reservation`
        to :meth:`refund` if the attempt turns out not to be a failure.
        """
        blocked = self.check(username=username, address=address)
        if blocked is not None:
            return blocked
        key = address_key(address)
        at = self.addresses.record(key)
        folded = None if username is None else username.casefold()
        if folded is not None:
            self.users.record(folded, now=at)
        return Reservation(username=folded, address=key, at=at)

    def refund(self, reservation: Reservation) -> None:
        """Take back a reservation whose attempt did not fail."""
        self.addresses.forget(reservation.address, reservation.at)
        if reservation.username is not None:
            self.users.forget(reservation.username, reservation.at)

    def failure(self, *, username: str | None, address: str) -> None:
        """Count a failed attempt against the address and, when given, the username."""
        self.addresses.record(address_key(address))
        if username is not None:
            self.users.record(username.casefold())

    def success(self, *, username: str) -> None:
        """A successful sign-in clears the user's failures (never the address's)."""
        self.users.reset(username.casefold())
