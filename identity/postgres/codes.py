"""Authorization codes on PostgreSQL (see :mod:`identity.codes`).

A redemption locks the code's row for its transaction: of two identity instances redeeming
one code at once, one spends it and the other sees it spent, which revokes the family.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from identity.codes import MAX_CODE_LIFETIME, AuthorizationCode, redeemed_code
from identity.errors import InvalidGrant, TokenReuse
from identity.hashing import new_token, token_hash
from identity.postgres.refresh_tokens import PgRefreshFamilies

__all__ = ["PgCodeTable"]


class PgCodeTable(PgRefreshFamilies):
    """The ``identity.codes`` table (a reused code revokes its refresh family, hence the base)."""

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
        now = self._clock()
        async with self._statement() as conn:
            await conn.execute(
                "INSERT INTO identity.codes (code_hash, client_id, redirect_uri, code_challenge,"
                " nonce, scope, username, auth_time, family_id, expires_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
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
                    now + min(lifetime, MAX_CODE_LIFETIME),
                ),
            )
        return code

    async def redeem_code(self, code: str, client_id: str) -> AuthorizationCode:
        """Spend ``code`` for ``client_id``; a second use revokes what the first one issued."""
        digest = token_hash(code)
        async with self._transaction() as conn:
            cur = await conn.execute(
                "SELECT client_id, redirect_uri, code_challenge, nonce, scope, username,"
                " auth_time, family_id, expires_at, used FROM identity.codes"
                " WHERE code_hash = %s FOR UPDATE",
                (digest,),
            )
            row = await cur.fetchone()
            if row is None:
                raise InvalidGrant("unknown authorization code")
            if row[9]:
                await self._revoke_family(conn, str(row[7]))
            else:
                await conn.execute(
                    "UPDATE identity.codes SET used = TRUE WHERE code_hash = %s", (digest,)
                )
        if row[9]:
            raise TokenReuse(
                "authorization code already used; its tokens are revoked", family_id=str(row[7])
            )
        return redeemed_code(row, client_id, self._clock())
