"""The relying parties: client ids, hashed secrets, redirect URIs, grant types and roles."""

from __future__ import annotations

import asyncio
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Literal, get_args

from identity.database import Tables
from identity.errors import InvalidClient, InvalidRequest
from identity.hashing import hash_password, verify_password
from identity.names import check_name, claim_name
from identity.roles import Role, check_role

__all__ = [
    "CLIENTS_SCHEMA",
    "DEVICE_CODE_GRANT",
    "GRANT_TYPES",
    "Client",
    "ClientRules",
    "ClientTable",
    "GrantType",
    "checked_client",
    "client_from_row",
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

CLIENTS_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS clients (
    client_id TEXT PRIMARY KEY,
    secret_hash TEXT,
    redirect_uris TEXT NOT NULL,
    grant_types TEXT NOT NULL,
    role TEXT,
    created_at REAL NOT NULL
);
"""


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


def _grant_types(values: Sequence[str]) -> tuple[GrantType, ...]:
    known: list[GrantType] = []
    for value in values:
        grant = next((g for g in GRANT_TYPES if g == value), None)
        if grant is None:
            raise InvalidRequest(f"unknown grant type {value!r}")
        if grant not in known:
            known.append(grant)
    return tuple(known)


def client_from_row(row: Sequence[object]) -> Client:
    """The client of a row (client_id, secret_hash, redirect_uris, grant_types, role)."""
    secret_hash = None if row[1] is None else str(row[1])
    return Client(
        client_id=str(row[0]),
        public=secret_hash is None,
        redirect_uris=tuple(str(uri) for uri in json.loads(str(row[2]))),
        grant_types=_grant_types(json.loads(str(row[3]))),
        role=None if row[4] is None else check_role(row[4]),
        _secret_hash=secret_hash,
    )


def checked_client(
    client_id: str,
    secret: str | None,
    redirect_uris: Sequence[str],
    grant_types: Sequence[str],
    role: Role | None,
) -> tuple[tuple[GrantType, ...], Role | None]:
    """The grant types and role of a client to register, checked; ``InvalidRequest`` if not."""
    check_name("client_id", client_id)
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
    return grants, role


class ClientRules(ABC):
    """What every backend's client table does on top of adding and reading clients."""

    @abstractmethod
    async def add_client(
        self,
        client_id: str,
        *,
        secret: str | None = None,
        redirect_uris: Sequence[str] = (),
        grant_types: Sequence[str] = ("authorization_code", "refresh_token"),
        role: Role | None = None,
    ) -> Client:
        """Register a client (see the backends)."""

    @abstractmethod
    async def get_client(self, client_id: str) -> Client | None:
        """The client ``client_id``, or None."""

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


class ClientTable(ClientRules, Tables):
    """The ``clients`` table."""

    async def add_client(
        self,
        client_id: str,
        *,
        secret: str | None = None,
        redirect_uris: Sequence[str] = (),
        grant_types: Sequence[str] = ("authorization_code", "refresh_token"),
        role: Role | None = None,
    ) -> Client:
        """Register a client; without ``secret`` it is public (PKCE required, no client grant).

        The id must not be taken by a user, another client or a service: a client-credentials
        token's ``sub`` is its client id (see :mod:`identity.names`).
        """
        grants, role = checked_client(client_id, secret, redirect_uris, grant_types, role)
        secret_hash = None if secret is None else await asyncio.to_thread(hash_password, secret)
        async with self._lock:
            try:
                await claim_name(self._db, client_id, "client")
                await self._db.execute(
                    "INSERT INTO clients (client_id, secret_hash, redirect_uris, grant_types,"
                    " role, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        client_id,
                        secret_hash,
                        json.dumps(list(redirect_uris)),
                        json.dumps(list(grants)),
                        role,
                        self._clock(),
                    ),
                )
            except BaseException:
                await self._db.rollback()
                raise
            await self._db.commit()
        return Client(client_id, secret is None, tuple(redirect_uris), grants, role, secret_hash)

    async def get_client(self, client_id: str) -> Client | None:
        """The client ``client_id``, or None."""
        async with self._db.execute(
            "SELECT client_id, secret_hash, redirect_uris, grant_types, role FROM clients"
            " WHERE client_id = ?",
            (client_id,),
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else client_from_row(row)

    async def list_clients(self) -> list[Client]:
        """Every registered client, by id."""
        async with self._db.execute(
            "SELECT client_id, secret_hash, redirect_uris, grant_types, role FROM clients"
            " ORDER BY client_id"
        ) as cursor:
            rows = await cursor.fetchall()
        return [client_from_row(row) for row in rows]
