"""The people who sign in: usernames, Argon2id password hashes, roles, and the disabled flag."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Final

from identity.database import Tables
from identity.errors import AccessDenied, InvalidRequest
from identity.hashing import hash_password, verify_password
from identity.names import check_name, claim_name
from identity.roles import Role, check_role

__all__ = ["USERS_SCHEMA", "User", "UserTable"]

USERS_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class User:
    """A person who signs in; the password hash never leaves the store."""

    username: str
    role: Role
    disabled: bool


class UserTable(Tables):
    """The ``users`` table."""

    async def add_user(self, username: str, password: str, role: Role = "user") -> User:
        """Create a user with an Argon2id password hash; an error if the name is taken by a
        user, a client or a service (one namespace, see :mod:`identity.names`)."""
        check_name("username", username)
        if not password:
            raise InvalidRequest("password must not be empty")
        role = check_role(role)
        password_hash = await asyncio.to_thread(hash_password, password)
        async with self._lock:
            try:
                await claim_name(self._db, username, "user")
                await self._db.execute(
                    "INSERT INTO users (username, password_hash, role, disabled, created_at)"
                    " VALUES (?, ?, ?, 0, ?)",
                    (username, password_hash, role, self._clock()),
                )
            except BaseException:
                await self._db.rollback()
                raise
            await self._db.commit()
        return User(username=username, role=role, disabled=False)

    async def set_user_disabled(self, username: str, disabled: bool) -> None:
        """Disable or re-enable a user; disabling also revokes their refresh tokens."""
        cursor = await self._db.execute(
            "UPDATE users SET disabled = ? WHERE username = ?", (int(disabled), username)
        )
        if cursor.rowcount == 0:
            raise InvalidRequest(f"no user {username!r}")
        if disabled:
            await self._db.execute(
                "INSERT OR IGNORE INTO revoked_families (family_id, revoked_at)"
                " SELECT DISTINCT family_id, ? FROM refresh_tokens WHERE username = ?",
                (self._clock(), username),
            )
        await self._db.commit()

    async def set_user_role(self, username: str, role: Role) -> User:
        """Change a user's role; tokens issued from now on carry the new role's scopes."""
        role = check_role(role)
        cursor = await self._db.execute(
            "UPDATE users SET role = ? WHERE username = ?", (role, username)
        )
        await self._db.commit()
        if cursor.rowcount == 0:
            raise InvalidRequest(f"no user {username!r}")
        user = await self.get_user(username)
        if user is None:
            raise InvalidRequest(f"no user {username!r}")
        return user

    async def list_users(self) -> list[User]:
        """Every user, by name."""
        async with self._db.execute(
            "SELECT username, role, disabled FROM users ORDER BY username"
        ) as cursor:
            rows = await cursor.fetchall()
        return [User(str(row[0]), check_role(row[1]), bool(row[2])) for row in rows]

    async def get_user(self, username: str) -> User | None:
        """The user named ``username``, or None."""
        async with self._db.execute(
            "SELECT username, role, disabled FROM users WHERE username = ?", (username,)
        ) as cursor:
            row = await cursor.fetchone()
        if row is None:
            return None
        return User(username=str(row[0]), role=check_role(row[1]), disabled=bool(row[2]))

    async def authenticate_user(self, username: str, password: str) -> User:
        """The enabled user whose password matches; ``access_denied`` otherwise (one message)."""
        async with self._db.execute(
            "SELECT password_hash FROM users WHERE username = ?", (username,)
        ) as cursor:
            row = await cursor.fetchone()
        stored = None if row is None else str(row[0])
        matches = await asyncio.to_thread(verify_password, stored, password)
        user = await self.get_user(username) if matches else None
        if user is None or user.disabled:
            raise AccessDenied("invalid username or password")
        return user
