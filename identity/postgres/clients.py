"""The ``clients`` table on PostgreSQL (see :mod:`identity.clients` for the rules)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

from identity.clients import Client, ClientRules, checked_client, client_from_row
from identity.hashing import hash_password
from identity.postgres.names import claim_name
from identity.postgres.tables import PgTables, storable
from identity.roles import Role

__all__ = ["PgClientTable"]


class PgClientTable(ClientRules, PgTables):
    """The relying parties, in ``identity.clients``."""

    async def add_client(
        self,
        client_id: str,
        *,
        secret: str | None = None,
        redirect_uris: Sequence[str] = (),
        grant_types: Sequence[str] = ("authorization_code", "refresh_token"),
        role: Role | None = None,
    ) -> Client:
        """Register a client; without ``secret`` it is public (PKCE required, no client grant).

        The id must not be taken by a user, another client or a service.
        """
        grants, role = checked_client(client_id, secret, redirect_uris, grant_types, role)
        secret_hash = None if secret is None else await asyncio.to_thread(hash_password, secret)
        async with self._transaction() as conn:
            await claim_name(conn, client_id, "client")
            await conn.execute(
                "INSERT INTO identity.clients (client_id, secret_hash, redirect_uris,"
                " grant_types, role, created_at) VALUES (%s, %s, %s, %s, %s, %s)",
                (
                    client_id,
                    secret_hash,
                    json.dumps(list(redirect_uris)),
                    json.dumps(list(grants)),
                    role,
                    self._clock(),
                ),
            )
        return Client(client_id, secret is None, tuple(redirect_uris), grants, role, secret_hash)

    async def get_client(self, client_id: str) -> Client | None:
        """The client ``client_id``, or None."""
        if not storable(client_id):
            return None
        async with self._statement() as conn:
            cur = await conn.execute(
                "SELECT client_id, secret_hash, redirect_uris, grant_types, role"
                " FROM identity.clients WHERE client_id = %s",
                (client_id,),
            )
            row = await cur.fetchone()
        return None if row is None else client_from_row(row)

    async def list_clients(self) -> list[Client]:
        """Every registered client, by id."""
        async with self._statement() as conn:
            cur = await conn.execute(
                "SELECT client_id, secret_hash, redirect_uris, grant_types, role"
                " FROM identity.clients ORDER BY client_id"
            )
            rows = await cur.fetchall()
        return [client_from_row(row) for row in rows]
