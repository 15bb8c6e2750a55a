"""Refresh tokens and their families: opaque, stored hashed, single use, rotated.

A family is one sign-in; presenting a spent token of a live family is reuse and revokes the
whole family. A token of a family that is already revoked (sign-out, ``/revoke``, a disabled
user, an earlier reuse) is simply refused: that is no new alarm.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from identity.database import Tables
from identity.errors import InvalidGrant, RevokedToken, TokenReuse
from identity.hashing import new_token, token_hash

__all__ = ["REFRESH_SCHEMA", "RefreshFamilies", "RefreshGrant"]

REFRESH_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    family_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    username TEXT NOT NULL,
    scope TEXT NOT NULL,
    auth_time INTEGER NOT NULL,
    expires_at REAL NOT NULL,
    used INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS refresh_tokens_family ON refresh_tokens (family_id);
CREATE TABLE IF NOT EXISTS revoked_families (
    family_id TEXT PRIMARY KEY,
    revoked_at REAL NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class RefreshGrant:
    """What a redeemed refresh token carried, and the token replacing it."""

    family_id: str
    client_id: str
    username: str
    scope: tuple[str, ...]
    auth_time: int
    new_token: str


class RefreshFamilies(Tables):
    """The ``refresh_tokens`` and ``revoked_families`` tables."""

    async def issue_refresh_token(
        self,
        *,
        family_id: str,
        client_id: str,
        username: str,
        scope: Sequence[str],
        auth_time: int,
        lifetime: float,
    ) -> str:
        """A new opaque refresh token in ``family_id``."""
        token = new_token()
        await self._db.execute(
            "INSERT INTO refresh_tokens (token_hash, family_id, client_id, username, scope,"
            " auth_time, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                token_hash(token),
                family_id,
                client_id,
                username,
                " ".join(scope),
                auth_time,
                self._clock() + lifetime,
            ),
        )
        await self._db.commit()
        return token

    async def rotate_refresh_token(
        self, token: str, client_id: str, *, lifetime: float
    ) -> RefreshGrant:
        """Spend ``token`` and issue its successor; reuse of a spent token revokes its family.

        ``RevokedToken`` when its family was revoked already, ``TokenReuse`` when this
        presentation is the reuse that revokes it.
        """
        digest = token_hash(token)
        async with self._lock:
            async with self._db.execute(
                "SELECT r.family_id, r.client_id, r.username, r.scope, r.auth_time, r.expires_at,"
                " r.used, f.family_id IS NOT NULL, u.disabled FROM refresh_tokens r"
                " LEFT JOIN revoked_families f ON f.family_id = r.family_id"
                " LEFT JOIN users u ON u.username = r.username WHERE r.token_hash = ?",
                (digest,),
            ) as cursor:
                row = await cursor.fetchone()
            if row is None:
                raise InvalidGrant("unknown refresh token")
            family_id = str(row[0])
            if str(row[1]) != client_id:
                raise InvalidGrant("refresh token was issued to another client")
            if row[7]:
                raise RevokedToken("refresh token revoked", family_id=family_id)
            if row[6]:
                await self._revoke_family(family_id)
                await self._db.commit()
                raise TokenReuse("refresh token reused; its family is revoked", family_id=family_id)
            if row[8] is None or row[8]:
                raise InvalidGrant("user no longer exists or is disabled")
            if self._clock() >= float(row[5]):
                raise InvalidGrant("refresh token expired")
            cursor = await self._db.execute(
                "UPDATE refresh_tokens SET used = 1 WHERE token_hash = ? AND used = 0", (digest,)
            )
            if cursor.rowcount != 1:
                await self._db.commit()
                raise InvalidGrant("refresh token already used")
            scope = tuple(str(row[3]).split())
            successor = new_token()
            await self._db.execute(
                "INSERT INTO refresh_tokens (token_hash, family_id, client_id, username, scope,"
                " auth_time, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    token_hash(successor),
                    family_id,
                    client_id,
                    str(row[2]),
                    " ".join(scope),
                    int(row[4]),
                    self._clock() + lifetime,
                ),
            )
            await self._db.commit()
        return RefreshGrant(
            family_id=family_id,
            client_id=client_id,
            username=str(row[2]),
            scope=scope,
            auth_time=int(row[4]),
            new_token=successor,
        )

    async def revoke_refresh_token(self, token: str, client_id: str) -> str | None:
        """Revoke the family of ``token`` if it is ``client_id``'s; its id, or None if none."""
        async with self._db.execute(
            "SELECT family_id, client_id FROM refresh_tokens WHERE token_hash = ?",
            (token_hash(token),),
        ) as cursor:
            row = await cursor.fetchone()
        if row is None or str(row[1]) != client_id:
            return None
        await self._revoke_family(str(row[0]))
        await self._db.commit()
        return str(row[0])

    async def revoke_family(self, family_id: str) -> None:
        """Revoke the sign-in ``family_id`` (its refresh tokens; its access tokens at /userinfo)."""
        await self._revoke_family(family_id)
        await self._db.commit()

    async def is_family_revoked(self, family_id: str) -> bool:
        """True when the sign-in ``family_id`` has been revoked."""
        async with self._db.execute(
            "SELECT 1 FROM revoked_families WHERE family_id = ?", (family_id,)
        ) as cursor:
            return await cursor.fetchone() is not None

    async def _revoke_family(self, family_id: str) -> None:
        await self._db.execute(
            "INSERT OR IGNORE INTO revoked_families (family_id, revoked_at) VALUES (?, ?)",
            (family_id, self._clock()),
        )
        await self._db.execute(
            "UPDATE refresh_tokens SET used = 1 WHERE family_id = ?", (family_id,)
        )
