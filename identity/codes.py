"""Authorization codes: single use, short lived, stored only as SHA-256 hashes.

A code is spent by one conditional ``UPDATE``, so two concurrent redemptions cannot both
succeed; a second presentation revokes the sign-in (refresh family) the first one started.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from identity.errors import InvalidGrant, TokenReuse
from identity.hashing import new_token, token_hash
from identity.refresh_tokens import RefreshFamilies

__all__ = ["CODES_SCHEMA", "MAX_CODE_LIFETIME", "AuthorizationCode", "CodeTable", "redeemed_code"]

CODES_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS codes (
    code_hash TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    code_challenge TEXT,
    nonce TEXT,
    scope TEXT NOT NULL,
    username TEXT NOT NULL,
    auth_time INTEGER NOT NULL,
    family_id TEXT NOT NULL,
    expires_at REAL NOT NULL,
    used INTEGER NOT NULL DEFAULT 0
);
"""
MAX_CODE_LIFETIME: Final = 60.0


@dataclass(frozen=True, slots=True)
class AuthorizationCode:
    """What a redeemed code was bound to."""

    client_id: str
    redirect_uri: str
    code_challenge: str | None
    nonce: str | None
    scope: tuple[str, ...]
    username: str
    auth_time: int
    family_id: str


class CodeTable(RefreshFamilies):
    """The ``codes`` table (a reused code revokes its refresh family, hence the base)."""

    async def issue_code(
        self,
        *,
        client_id: str,
        redirect_uri: str,
        username: str,
        scope: Sequence[str],
        code_challenge: str | None,
        nonce: str | None,
        auth_time: int,
        lifetime: float,
    ) -> str:
        """A new single-use code bound to everything the token request must repeat."""
        code = new_token()
        await self._db.execute(
            "INSERT INTO codes (code_hash, client_id, redirect_uri, code_challenge, nonce, scope,"
            " username, auth_time, family_id, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                token_hash(code),
                client_id,
                redirect_uri,
                code_challenge,
                nonce,
                " ".join(scope),
                username,
                auth_time,
                uuid.uuid4().hex,
                self._clock() + min(lifetime, MAX_CODE_LIFETIME),
            ),
        )
        await self._db.commit()
        return code

    async def redeem_code(self, code: str, client_id: str) -> AuthorizationCode:
        """Spend ``code`` for ``client_id``; a second use revokes what the first one issued."""
        digest = token_hash(code)
        async with self._lock:
            async with self._db.execute(
                "SELECT client_id, redirect_uri, code_challenge, nonce, scope, username,"
                " auth_time, family_id, expires_at, used FROM codes WHERE code_hash = ?",
                (digest,),
            ) as cursor:
                row = await cursor.fetchone()
            if row is None:
                raise InvalidGrant("unknown authorization code")
            family_id = str(row[7])
            if row[9]:
                await self._revoke_family(family_id)
                await self._db.commit()
                raise TokenReuse(
                    "authorization code already used; its tokens are revoked",
                    family_id=family_id,
                )
            cursor = await self._db.execute(
                "UPDATE codes SET used = 1 WHERE code_hash = ? AND used = 0", (digest,)
            )
            await self._db.commit()
            if cursor.rowcount != 1:
                raise InvalidGrant("authorization code already used")
        return redeemed_code(row, client_id, self._clock())


def redeemed_code(row: Sequence[object], client_id: str, now: float) -> AuthorizationCode:
    """The code a spent row (client_id, redirect_uri, code_challenge, nonce, scope, username,
    auth_time, family_id, expires_at, …) held, if ``client_id``'s and not expired."""
    if str(row[0]) != client_id:
        raise InvalidGrant("authorization code was issued to another client")
    if now >= float(str(row[8])):
        raise InvalidGrant("authorization code expired")
    return AuthorizationCode(
        client_id=str(row[0]),
        redirect_uri=str(row[1]),
        code_challenge=None if row[2] is None else str(row[2]),
        nonce=None if row[3] is None else str(row[3]),
        scope=tuple(str(row[4]).split()),
        username=str(row[5]),
        auth_time=int(str(row[6])),
        family_id=str(row[7]),
    )
