"""The shared store's idempotency ledger: keys of events a consumer has already sent."""

from __future__ import annotations

from store.bounds import check_key
from store.postgres.database import PgDatabase
from store.timestamps import to_micros, utcnow

__all__ = ["PgLedger"]


class PgLedger(PgDatabase):
    """The ledger of ``PgJobStore`` (see ``store.JobStore``), shared by every worker."""

    __slots__ = ()

    async def was_processed(self, key: str) -> bool:
        """See ``JobStore.was_processed``."""
        check_key(key)
        async with self._statement() as conn:
            cur = await conn.execute("SELECT 1 FROM processed_keys WHERE key = %s", (key,))
            return await cur.fetchone() is not None

    async def mark_processed(self, key: str) -> bool:
        """See ``JobStore.mark_processed``."""
        check_key(key)
        async with self._statement() as conn:
            cur = await conn.execute(
                "INSERT INTO processed_keys (key, at) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (key, to_micros(utcnow())),
            )
            return cur.rowcount == 1
