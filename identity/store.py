"""The identity store on SQLite: users, clients, authorization codes and refresh tokens.

Codes and refresh tokens are random and stored only as SHA-256 hashes; each is spent by one
conditional ``UPDATE``, so two concurrent redemptions cannot both succeed. A refresh token
belongs to a *family* (one sign-in); presenting a spent token revokes the whole family.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal, get_args

import aiosqlite

from identity.devices import DeviceCodes
from identity.errors import AccessDenied, InvalidClient, InvalidGrant, InvalidRequest, TokenReuse
from identity.hashing import hash_password, new_token, token_hash, verify_password
from identity.roles import Role, check_role
from keys.filemodes import private_database

__all__ = [
    "DEVICE_CODE_GRANT",
    "GRANT_TYPES",
    "AuthorizationCode",
    "Client",
    "GrantType",
    "IdentityStore",
    "RefreshGrant",
    "User",
]

GrantType = Literal[
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "urn:ietf:params:oauth:grant-type:device_code",
]
GRANT_TYPES: Final[tuple[GrantType, ...]] = get_args(GrantType)
DEVICE_CODE_GRANT: Final = "urn:ietf:params:oauth:grant-type:device_code"
"""The RFC 8628 grant type, used by ``sealflow login``."""

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS clients (
    client_id TEXT PRIMARY KEY,
    secret_hash TEXT,
    redirect_uris TEXT NOT NULL,
    grant_types TEXT NOT NULL,
    role TEXT,
    created_at REAL NOT NULL
);
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
CREATE TABLE IF NOT EXISTS revoked_jtis (
    jti TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
);
"""

_MAX_NAME_CHARS: Final = 128


@dataclass(frozen=True, slots=True)
class User:
    """A person who signs in; the password hash never leaves the store."""

    username: str
    role: Role
    disabled: bool


@dataclass(frozen=True, slots=True)
class Client:
    """A relying party; ``public`` clients have no secret and must use PKCE."""

    client_id: str
    public: bool
    redirect_uris: tuple[str, ...]
    grant_types: tuple[GrantType, ...]
    role: Role | None = None
    _secret_hash: str | None = field(default=None, repr=False, compare=False)

    def allows(self, grant_type: GrantType) -> bool:
        """True when the client may use ``grant_type``."""
        return grant_type in self.grant_types


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


@dataclass(frozen=True, slots=True)
class RefreshGrant:
    """What a redeemed refresh token carried, and the token replacing it."""

    family_id: str
    client_id: str
    username: str
    scope: tuple[str, ...]
    auth_time: int
    new_token: str


def _check_name(kind: str, value: str) -> str:
    if not value or len(value) > _MAX_NAME_CHARS or not value.isprintable():
        raise InvalidRequest(f"{kind} must be 1..{_MAX_NAME_CHARS} printable characters")
    if value != value.strip():
        raise InvalidRequest(f"{kind} must be 1..{_MAX_NAME_CHARS} printable characters")
    return value


def _grant_types(values: Sequence[str]) -> tuple[GrantType, ...]:
    known: list[GrantType] = []
    for value in values:
        grant = next((g for g in GRANT_TYPES if g == value), None)
        if grant is None:
            raise InvalidRequest(f"unknown grant type {value!r}")
        if grant not in known:
            known.append(grant)
    return tuple(known)


def _client_from_row(row: Sequence[object]) -> Client:
    secret_hash = None if row[1] is None else str(row[1])
    return Client(
        client_id=str(row[0]),
        public=secret_hash is None,
        redirect_uris=tuple(str(uri) for uri in json.loads(str(row[2]))),
        grant_types=_grant_types(json.loads(str(row[3]))),
        role=None if row[4] is None else check_role(row[4]),
        _secret_hash=secret_hash,
    )


class IdentityStore:
    """Async access to the identity database; open with :meth:`open`, finish with :meth:`close`."""

    def __init__(self, connection: aiosqlite.Connection, clock: Callable[[], float]) -> None:
        self._db = connection
        self._clock = clock
        self._lock = asyncio.Lock()
        self.devices = DeviceCodes(connection, lambda: self._clock(), self._lock)
        """Device authorization requests (RFC 8628), in the same database."""

    @classmethod
    async def open(
        cls, path: Path | str, *, clock: Callable[[], float] = time.time
    ) -> IdentityStore:
        """Open (creating when needed) the database at ``path``; ``":memory:"`` works too."""
        if isinstance(path, Path):
            private_database(path)
        connection = await aiosqlite.connect(str(path))
        try:
            await connection.execute("PRAGMA journal_mode=WAL")
            await connection.execute("PRAGMA foreign_keys=ON")
            await connection.executescript(_SCHEMA)
            await connection.executescript(DeviceCodes.SCHEMA)
            await connection.commit()
        except BaseException:
            await connection.close()
            raise
        return cls(connection, clock)

    async def close(self) -> None:
        """Close the database connection."""
        await self._db.close()

    # -- users ---------------------------------------------------------------------------

    async def add_user(self, username: str, password: str, role: Role = "user") -> User:
        """Create a user with an Argon2id password hash; an error if the name is taken."""
        _check_name("username", username)
        if not password:
            raise InvalidRequest("password must not be empty")
        role = check_role(role)
        password_hash = await asyncio.to_thread(hash_password, password)
        try:
            await self._db.execute(
                "INSERT INTO users (username, password_hash, role, disabled, created_at)"
                " VALUES (?, ?, ?, 0, ?)",
                (username, password_hash, role, self._clock()),
            )
            await self._db.commit()
        except aiosqlite.IntegrityError as error:
            raise InvalidRequest(f"user {username!r} already exists") from error
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
        return await self._require_user(username)

    async def _require_user(self, username: str) -> User:
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

    # -- clients -------------------------------------------------------------------------

    async def add_client(
        self,
        client_id: str,
        *,
        secret: str | None = None,
        redirect_uris: Sequence[str] = (),
        grant_types: Sequence[str] = ("authorization_code", "refresh_token"),
        role: Role | None = None,
    ) -> Client:
        """Register a client; without ``secret`` it is public (PKCE required, no client grant)."""
        _check_name("client_id", client_id)
        grants = _grant_types(grant_types)
        if secret is None and "client_credentials" in grants:
            raise InvalidRequest("a public client cannot use client_credentials")
        if "client_credentials" in grants and role is None:
            raise InvalidRequest("client_credentials needs a role for the client")
        if role is not None:
            role = check_role(role)
        for uri in redirect_uris:
            if not uri.startswith(("https://", "http://")) or "#" in uri:
                raise InvalidRequest(f"redirect URI {uri!r} must be absolute, without fragment")
        secret_hash = None if secret is None else await asyncio.to_thread(hash_password, secret)
        try:
            await self._db.execute(
                "INSERT INTO clients (client_id, secret_hash, redirect_uris, grant_types, role,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    client_id,
                    secret_hash,
                    json.dumps(list(redirect_uris)),
                    json.dumps(list(grants)),
                    role,
                    self._clock(),
                ),
            )
            await self._db.commit()
        except aiosqlite.IntegrityError as error:
            raise InvalidRequest(f"client {client_id!r} already exists") from error
        return Client(client_id, secret is None, tuple(redirect_uris), grants, role, secret_hash)

    async def get_client(self, client_id: str) -> Client | None:
        """The client ``client_id``, or None."""
        async with self._db.execute(
            "SELECT client_id, secret_hash, redirect_uris, grant_types, role FROM clients"
            " WHERE client_id = ?",
            (client_id,),
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else _client_from_row(row)

    async def list_clients(self) -> list[Client]:
        """Every registered client, by id."""
        async with self._db.execute(
            "SELECT client_id, secret_hash, redirect_uris, grant_types, role FROM clients"
            " ORDER BY client_id"
        ) as cursor:
            rows = await cursor.fetchall()
        return [_client_from_row(row) for row in rows]

    async def ensure_public_client(
        self, client_id: str, *, grant_types: Sequence[str], redirect_uris: Sequence[str] = ()
    ) -> bool:
        """Register a public client unless one of that id exists (left as it is); True if added."""
        if await self.get_client(client_id) is not None:
            return False
        try:
            await self.add_client(client_id, redirect_uris=redirect_uris, grant_types=grant_types)
        except InvalidRequest:
            if await self.get_client(client_id) is None:
                raise
            return False  # another process registered it between the two statements
        return True

    async def authenticate_client(self, client_id: str, secret: str | None) -> Client:
        """The client, checked: a confidential one needs its secret, a public one must send none."""
        client = await self.get_client(client_id)
        if client is None:
            await asyncio.to_thread(verify_password, None, secret or "")
            raise InvalidClient("client authentication failed")
        if client.public:
            if secret is not None:
                raise InvalidClient("client authentication failed")
            return client
        if secret is None or not await asyncio.to_thread(
            verify_password, client._secret_hash, secret
        ):
            raise InvalidClient("client authentication failed")
        return client

    # -- authorization codes ----------------------------------------------------------------

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
                self._clock() + min(lifetime, 60.0),
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
                raise TokenReuse("authorization code already used; its tokens are revoked")
            cursor = await self._db.execute(
                "UPDATE codes SET used = 1 WHERE code_hash = ? AND used = 0", (digest,)
            )
            await self._db.commit()
            if cursor.rowcount != 1:
                raise InvalidGrant("authorization code already used")
        if str(row[0]) != client_id:
            raise InvalidGrant("authorization code was issued to another client")
        if self._clock() >= float(row[8]):
            raise InvalidGrant("authorization code expired")
        return AuthorizationCode(
            client_id=str(row[0]),
            redirect_uri=str(row[1]),
            code_challenge=None if row[2] is None else str(row[2]),
            nonce=None if row[3] is None else str(row[3]),
            scope=tuple(str(row[4]).split()),
            username=str(row[5]),
            auth_time=int(row[6]),
            family_id=family_id,
        )

    # -- refresh tokens -----------------------------------------------------------------------

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
        """Spend ``token`` and issue its successor; reuse of a spent token revokes its family."""
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
            if row[6]:
                await self._revoke_family(family_id)
                await self._db.commit()
                raise TokenReuse("refresh token reused; its family is revoked")
            if row[7]:
                raise InvalidGrant("refresh token revoked")
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

    async def revoke_refresh_token(self, token: str, client_id: str) -> bool:
        """Revoke the family of ``token`` if it is ``client_id``'s; True when one was revoked."""
        async with self._db.execute(
            "SELECT family_id, client_id FROM refresh_tokens WHERE token_hash = ?",
            (token_hash(token),),
        ) as cursor:
            row = await cursor.fetchone()
        if row is None or str(row[1]) != client_id:
            return False
        await self._revoke_family(str(row[0]))
        await self._db.commit()
        return True

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

    # -- access-token revocation ------------------------------------------------------------

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
