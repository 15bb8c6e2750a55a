"""The ``users`` table on PostgreSQL (see :mod:`identity.users` for the rules)."""

from __future__ import annotations

import asyncio

from identity.errors import AccessDenied, InvalidRequest
from identity.hashing import hash_password, verify_password
from identity.names import check_name
from identity.postgres.names import claim_name
from identity.postgres.tables import PgTables, storable
from identity.roles import Role, check_role
from identity.users import User

__all__ = ["PgUserTable"]


class PgUserTable(PgTables):
    """The people who sign in, in ``identity.users``."""

    async def add_user(self, username: str, password: str, role: Role = "user") -> User:
        """Create a user with an Argon2id password hash; an error if the name is taken by a
        user, a client or a service (one namespace, see :mod:`identity.names`)."""
        check_name("username", username)
        if not password:
            raise InvalidRequest("password must not be empty")
        role = check_role(role)
        password_hash = await asyncio.to_thread(hash_password, password)
        async with self._transaction() as conn:
            await claim_name(conn, username, "user")
            await conn.execute(
                "INSERT INTO identity.users (username, password_hash, role, created_at)"
                " VALUES (%s, %s, %s, %s)",
                (username, password_hash, role, self._clock()),
            )
        return User(username=username, role=role, disabled=False)

    async def set_user_disabled(self, username: str, disabled: bool) -> None:
        """Disable or re-enable a user; disabling also revokes their refresh tokens."""
        async with self._transaction() as conn:
            cur = await conn.execute(
                "UPDATE identity.users SET disabled = %s WHERE username = %s",
                (disabled, username),
            )
            if cur.rowcount == 0:
                raise InvalidRequest(f"no user {username!r}")
            if disabled:
                await conn.execute(
                    "INSERT INTO identity.revoked_families (family_id, revoked_at)"
                    " SELECT DISTINCT family_id, %s FROM identity.refresh_tokens"
                    " WHERE username = %s ON CONFLICT (family_id) DO NOTHING",
                    (self._clock(), username),
                )

    async def set_user_role(self, username: str, role: Role) -> User:
        """Change a user's role; tokens issued from now on carry the new role's scopes."""
        role = check_role(role)
        async with self._statement() as conn:
            cur = await conn.execute(
                "UPDATE identity.users SET role = %s WHERE username = %s"
                " RETURNING username, role, disabled",
                (role, username),
            )
            row = await cur.fetchone()
        if row is None:
            raise InvalidRequest(f"no user {username!r}")
        return User(str(row[0]), check_role(row[1]), bool(row[2]))

    async def list_users(self) -> list[User]:
        """Every user, by name."""
        async with self._statement() as conn:
            cur = await conn.execute(
                "SELECT username, role, disabled FROM identity.users ORDER BY username"
            )
            rows = await cur.fetchall()
        return [User(str(row[0]), check_role(row[1]), bool(row[2])) for row in rows]

    async def get_user(self, username: str) -> User | None:
        """The user named ``username``, or None."""
        if not storable(username):
            return None
        async with self._statement() as conn:
            cur = await conn.execute(
                "SELECT username, role, disabled FROM identity.users WHERE username = %s",
                (username,),
            )
            row = await cur.fetchone()
        return None if row is None else User(str(row[0]), check_role(row[1]), bool(row[2]))

    async def authenticate_user(self, username: str, password: str) -> User:
        """The enabled user whose password matches; ``access_denied`` otherwise (one message)."""
        row = None
        if storable(username):
            async with self._statement() as conn:
                cur = await conn.execute(
                    "SELECT password_hash FROM identity.users WHERE username = %s", (username,)
                )
                row = await cur.fetchone()
        stored = None if row is None else str(row[0])
        matches = await asyncio.to_thread(verify_password, stored, password)
        user = await self.get_user(username) if matches else None
        if user is None or user.disabled:
            raise AccessDenied("invalid username or password")
        return user
