"""Sign-in and device-request rate limits in PostgreSQL, shared by every identity instance.

Each counted attempt is a row of ``identity.attempts`` (scope, key, time). A reservation
takes a transaction-scoped advisory lock per key it counts against (in a fixed order, so two
instances never deadlock), counts the key's rows inside the window, and inserts its own rows
in the same transaction: concurrent guesses on any number of instances are serialized per
key, and no more than ``limit`` pass. Rows older than the window are deleted as it slides
(per scope: each scope has one window), so the table holds one window's attempts at most.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from psycopg_pool import AsyncConnectionPool

from identity.ratelimit import Blocked, Reservation, address_key
from store.postgres.database import Connection, PgDatabase

__all__ = ["PgRequestLimit", "PgSignInLimits", "PgWindows"]


@dataclass(frozen=True, slots=True)
class _Counted:
    """One window an attempt counts against: its scope (``user``, ``address``…), key, limit."""

    scope: str
    key: str
    limit: int


def _stored(key: str) -> str:
    """``key`` as a row holds it: PostgreSQL text cannot hold NUL, so it is escaped."""
    return key.replace("\x00", "\\x00")


class PgWindows(PgDatabase):
    """Sliding windows of counted attempts in ``identity.attempts``."""

    def __init__(
        self,
        pool: AsyncConnectionPool[Connection],
        window: float,
        clock: Callable[[], float],
    ) -> None:
        if window <= 0:
            raise ValueError("window must be positive")
        super().__init__(pool)
        self.window = window
        self._clock = clock

    async def _reserve(self, counted: Sequence[_Counted]) -> tuple[str, float] | float:
        """Count one attempt against every window of ``counted`` at once; the time it is
        counted at, or ``(scope, seconds to wait)`` for the first window that is full."""
        now = self._clock()
        since = now - self.window
        async with self._transaction() as conn:
            for item in sorted(counted, key=lambda c: (c.scope, c.key)):
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(%s))",
                    (item.scope, _stored(item.key)),
                )
            await conn.execute(
                "DELETE FROM identity.attempts WHERE scope = ANY(%s) AND at <= %s",
                (sorted({item.scope for item in counted}), since),
            )
            for item in counted:
                cur = await conn.execute(
                    "SELECT COUNT(*), MIN(at) FROM (SELECT at FROM identity.attempts"
                    " WHERE scope = %s AND key = %s AND at > %s ORDER BY at DESC LIMIT %s) AS t",
                    (item.scope, _stored(item.key), since, item.limit),
                )
                row = await cur.fetchone()
                if row is not None and int(row[0]) >= item.limit:
                    return item.scope, max(float(row[1]) + self.window - now, 0.0)
            for item in counted:
                await conn.execute(
                    "INSERT INTO identity.attempts (scope, key, at) VALUES (%s, %s, %s)",
                    (item.scope, _stored(item.key), now),
                )
        return now

    async def _forget(self, scope: str, key: str, at: float) -> None:
        """Take back one attempt of ``key`` counted at ``at``."""
        async with self._statement() as conn:
            await conn.execute(
                "DELETE FROM identity.attempts WHERE id = (SELECT id FROM identity.attempts"
                " WHERE scope = %s AND key = %s AND at = %s LIMIT 1)",
                (scope, _stored(key), at),
            )

    async def _reset(self, scope: str, key: str) -> None:
        """Forget every attempt of ``key``."""
        async with self._statement() as conn:
            await conn.execute(
                "DELETE FROM identity.attempts WHERE scope = %s AND key = %s",
                (scope, _stored(key)),
            )


class PgSignInLimits(PgWindows):
    """:class:`identity.limits.SignInLimits` per username and per address, in PostgreSQL."""

    def __init__(
        self,
        pool: AsyncConnectionPool[Connection],
        *,
        per_user: int,
        per_address: int,
        window: float,
        clock: Callable[[], float],
    ) -> None:
        if per_user < 1 or per_address < 1:
            raise ValueError("limits must be positive")
        super().__init__(pool, window, clock)
        self.per_user = per_user
        self.per_address = per_address

    async def reserve(self, *, username: str | None, address: str) -> Reservation | Blocked:
        """Check both limits and count this attempt as a failure, in one transaction."""
        key = address_key(address)
        folded = None if username is None else username.casefold()
        counted = [_Counted("address", key, self.per_address)]
        if folded is not None:
            counted.append(_Counted("user", folded, self.per_user))
        reserved = await self._reserve(counted)
        if isinstance(reserved, tuple):
            scope, wait = reserved
            return Blocked(scope, max(1, math.ceil(wait)))
        return Reservation(username=folded, address=key, at=reserved)

    async def refund(self, reservation: Reservation) -> None:
        """Take back a reservation whose attempt did not fail."""
        await self._forget("address", reservation.address, reservation.at)
        if reservation.username is not None:
            await self._forget("user", reservation.username, reservation.at)

    async def success(self, *, username: str) -> None:
        """A successful sign-in clears the user's failures (never the address's)."""
        await self._reset("user", username.casefold())


class PgRequestLimit(PgWindows):
    """:class:`identity.limits.RequestLimit` in PostgreSQL, under one ``scope`` name."""

    def __init__(
        self,
        pool: AsyncConnectionPool[Connection],
        *,
        scope: str,
        limit: int,
        window: float,
        clock: Callable[[], float],
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be positive")
        super().__init__(pool, window, clock)
        self.scope = scope
        self.limit = limit

    async def take(self, key: str) -> int:
        """Count one call unless ``key`` is blocked; the seconds to wait, or 0."""
        reserved = await self._reserve([_Counted(self.scope, key, self.limit)])
        if isinstance(reserved, tuple):
            return max(1, math.ceil(reserved[1]))
        return 0
