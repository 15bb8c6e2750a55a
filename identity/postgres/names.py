"""Claiming a name in the one namespace of users, clients and services, on PostgreSQL.

The same rules as :func:`identity.names.claim_name`: the primary key on the case-folded name
makes two instances racing for one name fail the second (``ON CONFLICT DO NOTHING`` waits for
the first one's transaction, then finds the name taken).
"""

from __future__ import annotations

from identity.names import NameKind, folded, refuse_reserved, taken_error
from store.postgres.database import Connection

__all__ = ["claim_name"]


async def claim_name(conn: Connection, name: str, kind: NameKind) -> None:
    """Claim ``name`` for a new user or client in ``conn``'s transaction; a clear error if it
    is a service's or already taken (by either kind, in any letter case)."""
    refuse_reserved(name, kind)
    cur = await conn.execute(
        "INSERT INTO identity.names (folded, name, kind) VALUES (%s, %s, %s)"
        " ON CONFLICT (folded) DO NOTHING RETURNING 1",
        (folded(name), name, kind),
    )
    if await cur.fetchone() is not None:
        return
    cur = await conn.execute(
        "SELECT name, kind FROM identity.names WHERE folded = %s", (folded(name),)
    )
    row = await cur.fetchone()
    raise taken_error(name, kind, None if row is None else (str(row[0]), str(row[1])))
