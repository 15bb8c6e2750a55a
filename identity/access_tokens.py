"""Access tokens the identity remembers: which sign-in issued each (until it expires), and
those revoked at ``/revoke``.

Access tokens are JWTs checked by the gateway without asking the identity, so revoking a
sign-in means broadcasting the ids of its live access tokens; this table names them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from identity.database import Tables

__all__ = ["ACCESS_TOKENS_SCHEMA", "AccessTokenTable", "LiveAccessToken"]

ACCESS_TOKENS_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS access_tokens (
    jti TEXT PRIMARY KEY,
    family_id TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS access_tokens_family ON access_tokens (family_id);
CREATE INDEX IF NOT EXISTS access_tokens_expiry ON access_tokens (expires_at);
CREATE TABLE IF NOT EXISTS revoked_jtis (
    jti TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class LiveAccessToken:
    """An access token that has not expired yet: its ``jti`` and when it expires."""

    jti: str
    expires_at: float


class AccessTokenTable(Tables):
    """The ``access_tokens`` and ``revoked_jtis`` tables."""

    async def record_access_token(self, *, family_id: str, jti: str, expires_at: float) -> None:
        """Remember that sign-in ``family_id`` issued access token ``jti`` (until it expires)."""
        await self._db.execute(
            "INSERT OR IGNORE INTO access_tokens (jti, family_id, expires_at) VALUES (?, ?, ?)",
            (jti, family_id, expires_at),
        )
        await self._db.execute("DELETE FROM access_tokens WHERE expires_at < ?", (self._clock(),))
        await self._db.commit()

    async def live_access_tokens(self, family_id: str) -> list[LiveAccessToken]:
        """The access tokens of sign-in ``family_id`` that have not expired, oldest first."""
        async with self._db.execute(
            "SELECT jti, expires_at FROM access_tokens WHERE family_id = ? AND expires_at > ?"
            " ORDER BY expires_at",
            (family_id, self._clock()),
        ) as cursor:
            rows = await cursor.fetchall()
        return [LiveAccessToken(str(row[0]), float(row[1])) for row in rows]

    async def revoke_jti(self, jti: str, expires_at: float) -> None:
        """Remember a revoked access token until it would have expired anyway."""
        await self._db.execute(
            "INSERT OR IGNORE INTO revoked_jtis (jti, expires_at) VALUES (?, ?)", (jti, expires_at)
        )
        await self._db.execute("DELETE FROM revoked_jtis WHERE expires_at < ?", (self._clock(),))
        await self._db.commit()

    async def is_jti_revoked(self, jti: str) -> bool:
        """True when the access token ``jti`` was revoked."""
        async with self._db.execute("SELECT 1 FROM revoked_jtis WHERE jti = ?", (jti,)) as cursor:
            return await cursor.fetchone() is not None
