"""Device authorization requests (RFC 8628): user codes, hashed device codes, polling state.

A request is born ``pending``; the user approves or denies it on ``/device``; the client polls
``/token`` until it is ``approved`` and then spends it once (``spent``). Device and user codes
are stored only as SHA-256 hashes. Each state change is one conditional ``UPDATE``.

Pending requests are capped three ways: in all, per client, and per requesting address, the
last far below the per-client cap, so that one address cannot fill a client's (a public
client such as ``sealflow-cli`` needs no credentials to ask).
"""

from __future__ import annotations

import asyncio
import re
import secrets
import sqlite3
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import aiosqlite

from identity.errors import (
    AuthorizationPending,
    DeviceAccessDenied,
    ExpiredToken,
    InvalidGrant,
    InvalidRequest,
    RateLimited,
    SlowDown,
    TemporarilyUnavailable,
)
from identity.hashing import new_token, token_hash

__all__ = [
    "KEEP_AFTER_EXPIRY",
    "SLOW_DOWN_STEP",
    "USER_CODE_ALPHABET",
    "USER_CODE_LENGTH",
    "DeviceAuthorization",
    "DeviceCodes",
    "DeviceGrant",
    "DeviceRequest",
    "PendingCounts",
    "PendingLimits",
    "check_poll",
    "format_user_code",
    "grant_of",
    "normalize_user_code",
    "over_pending_limits",
]

USER_CODE_ALPHABET: Final = "BCDFGHJKLMNPQRSTVWXZ"
"""Consonants only: no vowels (no words), no 0/O or 1/I look-alikes (RFC 8628 §6.1)."""
USER_CODE_LENGTH: Final = 8
_USER_CODE: Final = re.compile(f"[{USER_CODE_ALPHABET}]{{{USER_CODE_LENGTH}}}")
SLOW_DOWN_STEP: Final = 5.0
KEEP_AFTER_EXPIRY: Final = 86_400.0  # expired rows answer expired_token for a day, then go


def format_user_code(code: str) -> str:
    """``BCDFGHJK`` shown as ``BCDF-GHJK``."""
    return f"{code[:4]}-{code[4:]}"


def normalize_user_code(text: str) -> str | None:
    """The canonical 8-letter code for what a user typed (case, dashes, spaces ignored)."""
    if len(text) > 32:
        return None
    cleaned = "".join(ch for ch in text.upper() if ch not in "- \t")
    return cleaned if _USER_CODE.fullmatch(cleaned) else None


DeviceRow = sqlite3.Row | Sequence[Any]
"""A ``device_codes`` row as either backend's driver returns it (indexable by column)."""


def check_poll(row: DeviceRow | None, client_id: str, now: float) -> tuple[str, float, bool]:
    """The checks every poll passes on either backend (RFC 8628 §3.5), on the row of
    ``client_id, scope, status, username, auth_time, family_id, interval, last_poll,
    expires_at``: its status, its interval, and whether this poll came too soon."""
    if row is None:
        raise InvalidGrant("unknown device code")
    if str(row[0]) != client_id:
        raise InvalidGrant("device code was issued to another client")
    status = str(row[2])
    if status == "spent":
        raise InvalidGrant("device code already used")
    if now >= float(row[8]):
        raise ExpiredToken("the device code expired; start the sign-in again")
    interval, last_poll = float(row[6]), row[7]
    return status, interval, last_poll is not None and now - float(last_poll) < interval


def grant_of(row: DeviceRow, client_id: str) -> DeviceGrant:
    """The grant an approved row of :func:`check_poll`'s shape gives its client."""
    return DeviceGrant(
        client_id=client_id,
        username=str(row[3]),
        scope=tuple(str(row[1]).split()),
        auth_time=int(row[4]),
        family_id=str(row[5]),
    )


@dataclass(frozen=True, slots=True)
class PendingLimits:
    """How many requests may be pending at once: in all, per client, per address."""

    overall: int
    per_client: int
    per_address: int


@dataclass(frozen=True, slots=True)
class PendingCounts:
    """How many requests are pending now: in all, for one client, from one address."""

    overall: int
    per_client: int
    per_address: int


@dataclass(frozen=True, slots=True)
class DeviceAuthorization:
    """What ``/device_authorization`` hands the client (the codes in the clear, once)."""

    device_code: str
    user_code: str
    expires_in: int
    interval: int


@dataclass(frozen=True, slots=True)
class DeviceRequest:
    """A pending request as the verification page shows it."""

    client_id: str
    scope: tuple[str, ...]
    expires_at: float


@dataclass(frozen=True, slots=True)
class DeviceGrant:
    """An approved request, spent by the poll that receives the tokens."""

    client_id: str
    username: str
    scope: tuple[str, ...]
    auth_time: int
    family_id: str


def over_pending_limits(pending: PendingCounts, limits: PendingLimits, lifetime: int) -> None:
    """Refuse a new request when ``pending`` reaches ``limits``: ``RateLimited`` for the
    address's share, ``TemporarilyUnavailable`` for the client's or the overall cap."""
    if pending.per_address >= limits.per_address:
        raise RateLimited(
            "too many pending device requests from this address; finish or wait for one to expire",
            retry_after=max(1, int(lifetime)),
            scope="address",
        )
    if pending.per_client >= limits.per_client or pending.overall >= limits.overall:
        raise TemporarilyUnavailable("too many pending device requests; try again later")


class DeviceCodes:
    """The ``device_codes`` table of the identity database."""

    SCHEMA: Final = """
    CREATE TABLE IF NOT EXISTS device_codes (
        device_hash TEXT PRIMARY KEY,
        user_code_hash TEXT NOT NULL UNIQUE,
        client_id TEXT NOT NULL,
        scope TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        username TEXT,
        auth_time INTEGER,
        family_id TEXT NOT NULL,
        interval REAL NOT NULL,
        last_poll REAL,
        expires_at REAL NOT NULL,
        address TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX IF NOT EXISTS device_codes_expiry ON device_codes (expires_at);
    """
    INDEXES: Final = """
    CREATE INDEX IF NOT EXISTS device_codes_client ON device_codes (client_id, status);
    CREATE INDEX IF NOT EXISTS device_codes_address ON device_codes (address, status);
    """

    @classmethod
    async def migrate(cls, connection: aiosqlite.Connection) -> None:
        """Create the table, adding the ``address`` column to a table made before it existed."""
        await connection.executescript(cls.SCHEMA)
        async with connection.execute("PRAGMA table_info(device_codes)") as cursor:
            columns = {str(row[1]) for row in await cursor.fetchall()}
        if "address" not in columns:
            await connection.execute(
                "ALTER TABLE device_codes ADD COLUMN address TEXT NOT NULL DEFAULT ''"
            )
        await connection.executescript(cls.INDEXES)

    def __init__(
        self, connection: aiosqlite.Connection, clock: Callable[[], float], lock: asyncio.Lock
    ) -> None:
        self._db = connection
        self._clock = clock
        self._lock = lock

    async def _pending_counts(self, now: float, client_id: str, address: str) -> PendingCounts:
        """Pending requests now: in all, for ``client_id``, from ``address``."""
        async with self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(client_id = ?), 0), COALESCE(SUM(address = ?), 0)"
            " FROM device_codes WHERE status = 'pending' AND expires_at > ?",
            (client_id, address, now),
        ) as cursor:
            row = await cursor.fetchone()
        if row is None:
            return PendingCounts(0, 0, 0)
        return PendingCounts(int(row[0]), int(row[1]), int(row[2]))

    async def issue(
        self,
        *,
        client_id: str,
        scope: Sequence[str],
        lifetime: int,
        interval: int,
        limits: PendingLimits,
        address: str,
    ) -> DeviceAuthorization:
        """A new pending request from ``address``, within ``limits``.

        ``RateLimited`` when the address holds its share of pending requests already;
        ``TemporarilyUnavailable`` when the client's or the overall cap is reached.
        """
        now = self._clock()
        async with self._lock:
            await self._db.execute(
                "DELETE FROM device_codes WHERE expires_at < ?", (now - KEEP_AFTER_EXPIRY,)
            )
            await self._db.commit()
            over_pending_limits(
                await self._pending_counts(now, client_id, address), limits, lifetime
            )
            device_code = new_token()
            for _ in range(8):
                user_code = "".join(
                    secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH)
                )
                try:
                    await self._db.execute(
                        "INSERT INTO device_codes (device_hash, user_code_hash, client_id, scope,"
                        " family_id, interval, expires_at, address)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            token_hash(device_code),
                            token_hash(user_code),
                            client_id,
                            " ".join(scope),
                            uuid.uuid4().hex,
                            float(interval),
                            now + lifetime,
                            address,
                        ),
                    )
                except aiosqlite.IntegrityError:
                    continue  # a user-code collision (1 in 2.5e10): draw again
                await self._db.commit()
                return DeviceAuthorization(device_code, user_code, lifetime, interval)
            await self._db.commit()
        raise TemporarilyUnavailable("could not allocate a user code; try again")

    async def pending(self, user_code: str) -> DeviceRequest | None:
        """The live pending request for ``user_code`` (canonical form), or None."""
        async with self._db.execute(
            "SELECT client_id, scope, expires_at FROM device_codes"
            " WHERE user_code_hash = ? AND status = 'pending' AND expires_at > ?",
            (token_hash(user_code), self._clock()),
        ) as cursor:
            row = await cursor.fetchone()
        if row is None:
            return None
        return DeviceRequest(str(row[0]), tuple(str(row[1]).split()), float(row[2]))

    async def decide(
        self, user_code: str, *, approve: bool, username: str, auth_time: int
    ) -> DeviceRequest:
        """Approve (for ``username``) or deny a live pending request; ``InvalidRequest`` if none."""
        async with self._lock:
            request = await self.pending(user_code)
            if request is None:
                raise InvalidRequest("unknown or expired code")
            cursor = await self._db.execute(
                "UPDATE device_codes SET status = ?, username = ?, auth_time = ?"
                " WHERE user_code_hash = ? AND status = 'pending'",
                ("approved" if approve else "denied", username, auth_time, token_hash(user_code)),
            )
            await self._db.commit()
            if cursor.rowcount != 1:
                raise InvalidRequest("unknown or expired code")
        return request

    async def poll(self, device_code: str, client_id: str) -> DeviceGrant:
        """One poll by the client: the grant once approved, else the RFC 8628 §3.5 error."""
        digest = token_hash(device_code)
        now = self._clock()
        async with self._lock:
            async with self._db.execute(
                "SELECT client_id, scope, status, username, auth_time, family_id, interval,"
                " last_poll, expires_at FROM device_codes WHERE device_hash = ?",
                (digest,),
            ) as cursor:
                row = await cursor.fetchone()
            status, interval, too_soon = check_poll(row, client_id, now)
            if too_soon:
                await self._db.execute(
                    "UPDATE device_codes SET interval = ?, last_poll = ? WHERE device_hash = ?",
                    (interval + SLOW_DOWN_STEP, now, digest),
                )
                await self._db.commit()
                raise SlowDown(f"poll at most every {int(interval + SLOW_DOWN_STEP)} s")
            if status != "approved":
                await self._db.execute(
                    "UPDATE device_codes SET last_poll = ? WHERE device_hash = ?", (now, digest)
                )
                await self._db.commit()
                if status == "denied":
                    raise DeviceAccessDenied("the user denied the request")
                raise AuthorizationPending("the user has not approved the request yet")
            cursor = await self._db.execute(
                "UPDATE device_codes SET status = 'spent', last_poll = ?"
                " WHERE device_hash = ? AND status = 'approved'",
                (now, digest),
            )
            await self._db.commit()
            if cursor.rowcount != 1:
                raise InvalidGrant("device code already used")
        assert row is not None  # check_poll refused a missing row
        return grant_of(row, client_id)
