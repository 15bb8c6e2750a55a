"""The embedded store's idempotency ledger: keys of events a consumer has already sent."""

from __future__ import annotations

from store.bounds import check_key
from store.sqlite.database import SqliteDatabase
from store.timestamps import to_micros, utcnow

__all__ = ["SqliteLedger"]


class SqliteLedger(SqliteDatabase):
    """The ledger of ``SqliteJobStore`` (see ``store.JobStore``)."""

    __slots__ = ()

    async def was_processed(self, key: str) -> bool:
        """See ``JobStore.was_processed``."""
        check_key(key)
        async with (
            self._read() as db,
            db.execute("SELECT 1 FROM processed_keys WHERE key = ?", (key,)) as cur,
        ):
            return await cur.fetchone() is not None

    async def mark_processed(self, key: str) -> bool:
        """See ``JobStore.mark_processed``."""
        check_key(key)
        async with (
            self._write() as db,
            db.execute(
                "INSERT OR IGNORE INTO processed_keys (key, at) VALUES (?, ?)",
                (key, to_micros(utcnow())),
            ) as cur,
        ):
            return cur.rowcount == 1
