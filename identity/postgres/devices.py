"""Device authorization requests (RFC 8628) on PostgreSQL (see :mod:`identity.devices`).

Issuing takes a transaction-scoped advisory lock, so the pending caps hold across identity
instances; approving is one conditional ``UPDATE``; a poll locks its row, so an approved
request is spent by exactly one poll.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from typing import Final

from identity.devices import (
    KEEP_AFTER_EXPIRY,
    SLOW_DOWN_STEP,
    USER_CODE_ALPHABET,
    USER_CODE_LENGTH,
    DeviceAuthorization,
    DeviceGrant,
    DeviceRequest,
    PendingCounts,
    PendingLimits,
    check_poll,
    grant_of,
    over_pending_limits,
)
from identity.errors import (
    AuthorizationPending,
    DeviceAccessDenied,
    InvalidRequest,
    SlowDown,
    TemporarilyUnavailable,
)
from identity.hashing import new_token, token_hash
from identity.postgres.tables import PgTables
from store.postgres.locks import DEVICE_ISSUE_LOCK

__all__ = ["PgDeviceCodes"]

_ISSUE_LOCK: Final = DEVICE_ISSUE_LOCK
"""The advisory lock issuing takes (counting and inserting must be one step everywhere)."""


class PgDeviceCodes(PgTables):
    """The ``identity.device_codes`` table."""

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
        """A new pending request from ``address``, within ``limits`` (see
        :meth:`identity.devices.DeviceCodes.issue`)."""
        now = self._clock()
        device_code = new_token()
        async with self._transaction() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_ISSUE_LOCK,))
            await conn.execute(
                "DELETE FROM identity.device_codes WHERE expires_at < %s",
                (now - KEEP_AFTER_EXPIRY,),
            )
            cur = await conn.execute(
                "SELECT COUNT(*), COUNT(*) FILTER (WHERE client_id = %s),"
                " COUNT(*) FILTER (WHERE address = %s) FROM identity.device_codes"
                " WHERE status = 'pending' AND expires_at > %s",
                (client_id, address, now),
            )
            row = await cur.fetchone()
            counts = PendingCounts(0, 0, 0) if row is None else PendingCounts(*map(int, row))
            over_pending_limits(counts, limits, lifetime)
            for _ in range(8):
                user_code = "".join(
                    secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH)
                )
                cur = await conn.execute(
                    "INSERT INTO identity.device_codes (device_hash, user_code_hash, client_id,"
                    " scope, family_id, interval, expires_at, address)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT (user_code_hash) DO NOTHING RETURNING 1",
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
                if await cur.fetchone() is not None:
                    return DeviceAuthorization(device_code, user_code, lifetime, interval)
        raise TemporarilyUnavailable("could not allocate a user code; try again")

    async def pending(self, user_code: str) -> DeviceRequest | None:
        """The live pending request for ``user_code`` (canonical form), or None."""
        async with self._statement() as conn:
            cur = await conn.execute(
                "SELECT client_id, scope, expires_at FROM identity.device_codes"
                " WHERE user_code_hash = %s AND status = 'pending' AND expires_at > %s",
                (token_hash(user_code), self._clock()),
            )
            row = await cur.fetchone()
        if row is None:
            return None
        return DeviceRequest(str(row[0]), tuple(str(row[1]).split()), float(row[2]))

    async def decide(
        self, user_code: str, *, approve: bool, username: str, auth_time: int
    ) -> DeviceRequest:
        """Approve (for ``username``) or deny a live pending request; ``InvalidRequest`` if none."""
        async with self._statement() as conn:
            cur = await conn.execute(
                "UPDATE identity.device_codes SET status = %s, username = %s, auth_time = %s"
                " WHERE user_code_hash = %s AND status = 'pending' AND expires_at > %s"
                " RETURNING client_id, scope, expires_at",
                (
                    "approved" if approve else "denied",
                    username,
                    auth_time,
                    token_hash(user_code),
                    self._clock(),
                ),
            )
            row = await cur.fetchone()
        if row is None:
            raise InvalidRequest("unknown or expired code")
        return DeviceRequest(str(row[0]), tuple(str(row[1]).split()), float(row[2]))

    async def poll(self, device_code: str, client_id: str) -> DeviceGrant:
        """One poll by the client: the grant once approved, else the RFC 8628 §3.5 error."""
        digest = token_hash(device_code)
        now = self._clock()
        async with self._transaction() as conn:
            cur = await conn.execute(
                "SELECT client_id, scope, status, username, auth_time, family_id, interval,"
                " last_poll, expires_at FROM identity.device_codes WHERE device_hash = %s"
                " FOR UPDATE",
                (digest,),
            )
            row = await cur.fetchone()
            status, interval, too_soon = check_poll(row, client_id, now)
            if too_soon:
                interval += SLOW_DOWN_STEP
            await conn.execute(
                "UPDATE identity.device_codes SET interval = %s, last_poll = %s,"
                " status = %s WHERE device_hash = %s",
                (
                    interval,
                    now,
                    "spent" if status == "approved" and not too_soon else status,
                    digest,
                ),
            )
        if too_soon:
            raise SlowDown(f"poll at most every {int(interval)} s")
        if status == "denied":
            raise DeviceAccessDenied("the user denied the request")
        if status != "approved":
            raise AuthorizationPending("the user has not approved the request yet")
        assert row is not None  # check_poll refused a missing row
        return grant_of(row, client_id)
