"""Refresh tokens and their families on PostgreSQL (see :mod:`identity.refresh_tokens`).

A rotation locks the token's row (``SELECT … FOR UPDATE``) for its transaction, so two
identity instances rotating one token at once serialize: the first spends it and issues the
successor, the second finds it spent and revokes the family as reuse.
"""

from __future__ import annotations

from collections.abc import Sequence

from identity.errors import IdentityError, InvalidGrant, RevokedToken, TokenReuse
from identity.hashing import new_token, token_hash
from identity.postgres.tables import PgTables
from identity.refresh_tokens import RefreshGrant
from store.postgres.database import Connection

__all__ = ["PgRefreshFamilies"]


class PgRefreshFamilies(PgTables):
    """The ``identity.refresh_tokens`` and ``identity.revoked_families`` tables."""

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
        async with self._statement() as conn:
            await self._insert_token(
                conn, token, family_id, client_id, username, scope, auth_time, lifetime
            )
        return token

    async def _insert_token(
        self,
        conn: Connection,
        token: str,
        family_id: str,
        client_id: str,
        username: str,
        scope: Sequence[str],
        auth_time: int,
        lifetime: float,
    ) -> None:
        await conn.execute(
            "INSERT INTO identity.refresh_tokens (token_hash, family_id, client_id, username,"
            " scope, auth_time, expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
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

    async def rotate_refresh_token(
        self, token: str, client_id: str, *, lifetime: float
    ) -> RefreshGrant:
        """Spend ``token`` and issue its successor; reuse of a spent token revokes its family.

        ``RevokedToken`` when its family was revoked already, ``TokenReuse`` when this
        presentation is the reuse that revokes it.
        """
        error: IdentityError | None = None
        successor = new_token()
        async with self._transaction() as conn:
            cur = await conn.execute(
                "SELECT r.family_id, r.client_id, r.username, r.scope, r.auth_time,"
                " r.expires_at, r.used, f.family_id IS NOT NULL, u.disabled"
                " FROM identity.refresh_tokens r"
                " LEFT JOIN identity.revoked_families f ON f.family_id = r.family_id"
                " LEFT JOIN identity.users u ON u.username = r.username"
                " WHERE r.token_hash = %s FOR UPDATE OF r",
                (token_hash(token),),
            )
            row = await cur.fetchone()
            if row is None:
                raise InvalidGrant("unknown refresh token")
            family_id = str(row[0])
            if str(row[1]) != client_id:
                raise InvalidGrant("refresh token was issued to another client")
            if row[7]:
                raise RevokedToken("refresh token revoked", family_id=family_id)
            if row[6]:
                await self._revoke_family(conn, family_id)
                error = TokenReuse(
                    "refresh token reused; its family is revoked", family_id=family_id
                )
            elif row[8] is None or row[8]:
                raise InvalidGrant("user no longer exists or is disabled")
            elif self._clock() >= float(row[5]):
                raise InvalidGrant("refresh token expired")
            else:
                await conn.execute(
                    "UPDATE identity.refresh_tokens SET used = TRUE WHERE token_hash = %s",
                    (token_hash(token),),
                )
                await self._insert_token(
                    conn,
                    successor,
                    family_id,
                    client_id,
                    str(row[2]),
                    str(row[3]).split(),
                    int(row[4]),
                    lifetime,
                )
        if error is not None:
            raise error  # after the commit: the family stays revoked
        return RefreshGrant(
            family_id=family_id,
            client_id=client_id,
            username=str(row[2]),
            scope=tuple(str(row[3]).split()),
            auth_time=int(row[4]),
            new_token=successor,
        )

    async def revoke_refresh_token(self, token: str, client_id: str) -> str | None:
        """Revoke the family of ``token`` if it is ``client_id``'s; its id, or None if none."""
        async with self._transaction() as conn:
            cur = await conn.execute(
                "SELECT family_id, client_id FROM identity.refresh_tokens WHERE token_hash = %s",
                (token_hash(token),),
            )
            row = await cur.fetchone()
            if row is None or str(row[1]) != client_id:
                return None
            await self._revoke_family(conn, str(row[0]))
        return str(row[0])

    async def revoke_family(self, family_id: str) -> None:
        """Revoke the sign-in ``family_id`` (its refresh tokens; its access tokens at /userinfo)."""
        async with self._transaction() as conn:
            await self._revoke_family(conn, family_id)

    async def is_family_revoked(self, family_id: str) -> bool:
        """True when the sign-in ``family_id`` has been revoked."""
        async with self._statement() as conn:
            cur = await conn.execute(
                "SELECT 1 FROM identity.revoked_families WHERE family_id = %s", (family_id,)
            )
            return await cur.fetchone() is not None

    async def _revoke_family(self, conn: Connection, family_id: str) -> None:
        """Revoke ``family_id`` in ``conn``'s transaction."""
        await conn.execute(
            "INSERT INTO identity.revoked_families (family_id, revoked_at) VALUES (%s, %s)"
            " ON CONFLICT (family_id) DO NOTHING",
            (family_id, self._clock()),
        )
        await conn.execute(
            "UPDATE identity.refresh_tokens SET used = TRUE WHERE family_id = %s", (family_id,)
        )
