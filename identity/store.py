"""The identity store: every identity table on one SQLite connection.

Each concern keeps its rows and SQL in its own module (users, clients, codes, refresh
families, access tokens, device codes, and the one namespace of names); this class only opens
the database, creates the tables and puts the concerns together.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import aiosqlite
import structlog

from identity.access_tokens import ACCESS_TOKENS_SCHEMA, AccessTokenTable
from identity.clients import CLIENTS_SCHEMA, ClientTable
from identity.codes import CODES_SCHEMA, CodeTable
from identity.devices import DeviceCodes
from identity.names import NAMES_SCHEMA, claim_existing_names
from identity.refresh_tokens import REFRESH_SCHEMA
from identity.users import USERS_SCHEMA, UserTable
from keys.filemodes import private_database

__all__ = ["IdentityStore"]

_log = structlog.get_logger("sealflow.identity.store")
_SCHEMAS = (
    USERS_SCHEMA,
    CLIENTS_SCHEMA,
    NAMES_SCHEMA,
    CODES_SCHEMA,
    REFRESH_SCHEMA,
    ACCESS_TOKENS_SCHEMA,
)


class IdentityStore(UserTable, ClientTable, CodeTable, AccessTokenTable):
    """Async access to the identity database; open with :meth:`open`, finish with :meth:`close`."""

    backend = "sqlite"

    def __init__(self, connection: aiosqlite.Connection, clock: Callable[[], float]) -> None:
        super().__init__(connection, clock)
        self.devices = DeviceCodes(connection, lambda: self._clock(), self._lock)
        """Device authorization requests (RFC 8628), in the same database."""

    @classmethod
    async def open(
        cls, path: Path | str, *, clock: Callable[[], float] = time.time
    ) -> IdentityStore:
        """Open (creating when needed) the database at ``path``; ``":memory:"`` works too."""
        if isinstance(path, Path):
            private_database(path)
        connection = await aiosqlite.connect(str(path))
        try:
            await connection.execute("PRAGMA journal_mode=WAL")
            await connection.execute("PRAGMA foreign_keys=ON")
            for schema in _SCHEMAS:
                await connection.executescript(schema)
            await DeviceCodes.migrate(connection)
            await connection.commit()
            clashes = await claim_existing_names(connection)
        except BaseException:
            await connection.close()
            raise
        if clashes:
            _log.warning(
                "identity.name_clashes",
                names=clashes[:20],
                count=len(clashes),
                detail="made before users, clients and services shared one namespace; rename",
            )
        return cls(connection, clock)

    async def close(self) -> None:
        """Close the database connection."""
        await self._db.close()
