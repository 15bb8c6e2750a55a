"""Job blobs in PostgreSQL: a ``blobs`` row per digest and its bytes in 1 MiB ``blob_parts``.

These run inside the caller's transaction, so a blob commits (or rolls back) together with
the job that names it, and every host reads it from the database rather than a disk.
"""

from __future__ import annotations

import hashlib
from typing import Final

from store.errors import BlobCorrupt, BlobNotFound, BlobTooLarge
from store.postgres.database import Connection
from store.postgres.locks import BLOB_LOCK_SPACE
from store.timestamps import to_micros, utcnow

__all__ = ["PART_BYTES", "delete_unused_blob", "insert_blob", "lock_blob", "read_blob"]

PART_BYTES: Final = 1 << 20
_BLOB_LOCK_SPACE: Final = BLOB_LOCK_SPACE
"""First key of the advisory locks that order a blob's insert against its deletion."""


async def lock_blob(conn: Connection, sha256: str) -> None:
    """Serialize, until the transaction ends, every create and delete touching this blob."""
    await conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_BLOB_LOCK_SPACE, sha256))


async def insert_blob(conn: Connection, sha256: str, data: bytes) -> bool:
    """Store ``data`` (already checked against ``sha256``); False if it was stored before."""
    cur = await conn.execute(
        "INSERT INTO blobs (sha256, size, stored_at) VALUES (%s, %s, %s) "
        "ON CONFLICT (sha256) DO NOTHING",
        (sha256, len(data), to_micros(utcnow())),
    )
    if cur.rowcount != 1:
        return False
    async with conn.cursor() as parts:
        await parts.executemany(
            "INSERT INTO blob_parts (sha256, seq, data) VALUES (%s, %s, %s)",
            [
                (sha256, seq, data[offset : offset + PART_BYTES])
                for seq, offset in enumerate(range(0, len(data), PART_BYTES))
            ],
        )
    return True


async def read_blob(conn: Connection, sha256: str, *, max_bytes: int) -> bytes:
    """The blob's bytes, digest re-checked; nothing is fetched when it is over ``max_bytes``."""
    cur = await conn.execute("SELECT size FROM blobs WHERE sha256 = %s", (sha256,))
    row = await cur.fetchone()
    if row is None:
        raise BlobNotFound(f"no blob {sha256}")
    if int(row[0]) > max_bytes:
        raise BlobTooLarge(f"blob {sha256} is larger than {max_bytes} bytes")
    digest = hashlib.sha256()
    data = bytearray()
    async with conn.cursor() as parts:
        await parts.execute("SELECT data FROM blob_parts WHERE sha256 = %s ORDER BY seq", (sha256,))
        async for (part,) in parts:
            data += part
            if len(data) > max_bytes:
                raise BlobTooLarge(f"blob {sha256} is larger than {max_bytes} bytes")
            digest.update(part)
    if len(data) != int(row[0]) or digest.hexdigest() != sha256:
        raise BlobCorrupt(f"blob {sha256} does not match its digest")
    return bytes(data)


async def delete_unused_blob(conn: Connection, sha256: str) -> bool:
    """Delete the blob if no job names it (call under :func:`lock_blob`); True if deleted."""
    cur = await conn.execute(
        "DELETE FROM blobs WHERE sha256 = %s "
        "AND NOT EXISTS (SELECT 1 FROM jobs WHERE blob_sha256 = %s)",
        (sha256, sha256),
    )
    return cur.rowcount == 1
