"""Spent envelope ids in PostgreSQL, shared by every replica and kept until the envelope's exp.

The per-process ``broker.spent_ids.SpentIds`` refuses a copy only to the process that saw the
envelope first. When ``SEALFLOW_DATABASE_URL`` names PostgreSQL, every consumer also claims
each id that is new to it here (:meth:`PgSpentEnvelopes.claim`) before its handler runs, and
the consumer that won it marks it done (:meth:`~PgSpentEnvelopes.complete`) once the delivery
is settled (handled, retried under a fresh ticket, or dead-lettered). An id is spent on first
sight whatever the outcome (issue 11.5): nothing un-spends one before it expires. A
``pending`` id may be taken again only by a broker redelivery (its holder died mid-work), a
``done`` one never before it expires.
"""

from __future__ import annotations

import math
import re
from typing import Final, Self

from psycopg_pool import AsyncConnectionPool

from store.postgres.database import (
    DEFAULT_CONNECT_TIMEOUT,
    Connection,
    open_pool,
    unavailable,
)

__all__ = ["PgSpentEnvelopes"]

_JTI: Final = re.compile(r"[A-Za-z0-9_-]{1,128}")
_POOL_SIZE: Final = 4

# One statement, so two replicas claiming the same id at once cannot both win: the row
# lock of the conflicting insert orders them, and the loser's WHERE sees the winner's row.
_CLAIM: Final = (
    "INSERT INTO spent_envelopes (jti, expires_at, state) VALUES (%(jti)s, %(exp)s, 'pending') "
    "ON CONFLICT (jti) DO UPDATE SET expires_at = EXCLUDED.expires_at, state = 'pending' "
    "WHERE spent_envelopes.expires_at < %(now)s "
    "OR (spent_envelopes.state = 'pending' AND %(redelivered)s) "
    "RETURNING jti"
)


def _check(jti: str) -> str:
    """A ``jti`` as envelopes carry it (the replay journal's alphabet), else ``ValueError``."""
    if not isinstance(jti, str) or _JTI.fullmatch(jti) is None:
        raise ValueError("jti must be 1 to 128 characters of A-Z a-z 0-9 _ -")
    return jti


class PgSpentEnvelopes:
    """The ``spent_envelopes`` table: ``jti`` → (expiry, ``pending`` | ``done``)."""

    __slots__ = ("_owns_pool", "pool")

    def __init__(self, pool: AsyncConnectionPool[Connection], *, owns_pool: bool = False) -> None:
        self.pool = pool
        self._owns_pool = owns_pool

    @classmethod
    async def open(cls, url: str, *, timeout: float = DEFAULT_CONNECT_TIMEOUT) -> Self:
        """A small pool of its own to ``url``, schema migrated (see ``open_pool``)."""
        return cls(await open_pool(url, max_size=_POOL_SIZE, timeout=timeout), owns_pool=True)

    async def close(self) -> None:
        """Close the pool if :meth:`open` made it."""
        if self._owns_pool:
            await self.pool.close()

    async def claim(self, jti: str, expires_at: float, *, now: float, redelivered: bool) -> bool:
        """Take ``jti`` as being handled until ``expires_at`` (epoch s); False means a replay."""
        _check(jti)
        if not math.isfinite(expires_at) or not math.isfinite(now):
            raise ValueError("expires_at and now must be finite epoch seconds")
        params = {"jti": jti, "exp": expires_at, "now": now, "redelivered": redelivered}
        async with unavailable(), self.pool.connection() as conn:
            cur = await conn.execute(_CLAIM, params)
            return await cur.fetchone() is not None

    async def complete(self, jti: str) -> None:
        """The delivery is settled: ``jti`` is refused on every replica, even to a broker
        redelivery, until it expires. Only the consumer that won the claim calls it."""
        async with unavailable(), self.pool.connection() as conn:
            await conn.execute(
                "UPDATE spent_envelopes SET state = 'done' WHERE jti = %s", (_check(jti),)
            )

    async def spent(self, now: float) -> list[tuple[str, float, bool]]:
        """Every id still spent at ``now`` as ``(jti, expires_at, pending)``, the shape
        ``SpentIdsJournal.load`` gives: a pending id is spent too (only a broker redelivery
        may take it again)."""
        async with unavailable(), self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT jti, expires_at, state = 'pending' FROM spent_envelopes "
                "WHERE expires_at >= %s ORDER BY expires_at",
                (now,),
            )
            rows = await cur.fetchall()
        return [(jti, float(expires_at), bool(pending)) for jti, expires_at, pending in rows]

    async def prune(self, now: float) -> int:
        """Delete the ids whose envelopes have expired; returns how many (any replica may)."""
        async with unavailable(), self.pool.connection() as conn:
            cur = await conn.execute("DELETE FROM spent_envelopes WHERE expires_at < %s", (now,))
            return cur.rowcount
