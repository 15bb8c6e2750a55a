"""Access tokens the identity remembers, on PostgreSQL (see :mod:`identity.access_tokens`)."""

from __future__ import annotations

from identity.access_tokens import LiveAccessToken
from identity.postgres.tables import PgTables

__all__ = ["PgAccessTokenTable"]


class PgAccessTokenTable(PgTables):
    """The ``identity.access_tokens`` and ``identity.revoked_jtis`` tables."""

    async def record_access_token(self, *, family_id: str, jti: str, expires_at: float) -> None:
        """Remember that sign-in ``family_id`` issued access token ``jti`` (until it expires)."""
        async with self._transaction() as conn:
            await conn.execute(
                "INSERT INTO identity.access_tokens (jti, family_id, expires_at)"
                " VALUES (%s, %s, %s) ON CONFLICT (jti) DO NOTHING",
                (jti, family_id, expires_at),
            )
            await conn.execute(
                "DELETE FROM identity.access_tokens WHERE expires_at < %s", (self._clock(),)
            )

    async def live_access_tokens(self, family_id: str) -> list[LiveAccessToken]:
        """The access tokens of sign-in ``family_id`` that have not expired, oldest first."""
        async with self._statement() as conn:
            cur = await conn.execute(
                "SELECT jti, expires_at FROM identity.access_tokens"
                " WHERE family_id = %s AND expires_at > %s ORDER BY expires_at",
                (family_id, self._clock()),
            )
            rows = await cur.fetchall()
        return [LiveAccessToken(str(row[0]), float(row[1])) for row in rows]

    async def revoke_jti(self, jti: str, expires_at: float) -> None:
        """Remember a revoked access token until it would have expired anyway."""
        async with self._transaction() as conn:
            await conn.execute(
                "INSERT INTO identity.revoked_jtis (jti, expires_at) VALUES (%s, %s)"
                " ON CONFLICT (jti) DO NOTHING",
                (jti, expires_at),
            )
            await conn.execute(
                "DELETE FROM identity.revoked_jtis WHERE expires_at < %s", (self._clock(),)
            )

    async def is_jti_revoked(self, jti: str) -> bool:
        """True when the access token ``jti`` was revoked."""
        async with self._statement() as conn:
            cur = await conn.execute("SELECT 1 FROM identity.revoked_jtis WHERE jti = %s", (jti,))
            return await cur.fetchone() is not None
