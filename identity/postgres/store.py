"""``PgIdentityStore``: every identity table in PostgreSQL, for several identity instances."""

from __future__ import annotations

import time
from collections.abc import Callable

from psycopg_pool import AsyncConnectionPool

from identity.postgres.access_tokens import PgAccessTokenTable
from identity.postgres.clients import PgClientTable
from identity.postgres.codes import PgCodeTable
from identity.postgres.devices import PgDeviceCodes
from identity.postgres.schema import IDENTITY_SCHEMA
from identity.postgres.users import PgUserTable
from store.postgres.database import DEFAULT_POOL_MAX, Connection, open_pool, unavailable
from store.postgres.migrations import apply_migrations

__all__ = ["PgIdentityStore"]


class PgIdentityStore(PgUserTable, PgClientTable, PgCodeTable, PgAccessTokenTable):
    """The identity store on PostgreSQL; open with :meth:`open`, finish with :meth:`close`."""

    backend = "postgresql"

    def __init__(self, pool: AsyncConnectionPool[Connection], clock: Callable[[], float]) -> None:
        super().__init__(pool, clock)
        self.devices = PgDeviceCodes(pool, clock)
        """Device authorization requests (RFC 8628), in the same database."""

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        clock: Callable[[], float] = time.time,
        max_connections: int = DEFAULT_POOL_MAX,
    ) -> PgIdentityStore:
        """Connect a pool to ``url`` (``postgresql://…``) and migrate the identity's schema.

        Raises ``StoreUnavailable`` when the server does not answer or the schema is newer.
        """
        pool = await open_pool(url, max_size=max_connections, upgrade=None)
        try:
            async with unavailable(), pool.connection() as conn:
                await apply_migrations(conn, IDENTITY_SCHEMA)
        except BaseException:
            await pool.close()
            raise
        return cls(pool, clock)
