"""One sign-in attempt: the rate limits first, then the password, each outcome audited.

Shared by the login page of ``/authorize`` and the device verification page. An attempt
reserves its place under the limits before the password is checked, in one step with the
check itself: over a limit it is refused without Argon2 work (so it cannot confirm a guessed
password), and concurrent guesses cannot all pass the check while the first ones are still
being verified. A successful attempt gets its reservation back.
"""

from __future__ import annotations

from typing import Final

from identity.audit import AuditTrail
from identity.backends import AnyIdentityStore
from identity.errors import AccessDenied, RateLimited
from identity.limits import SignInLimits
from identity.ratelimit import Blocked, Reservation
from identity.users import User

__all__ = ["MAX_PASSWORD_CHARS", "MAX_USERNAME_CHARS", "SignIn"]

MAX_USERNAME_CHARS: Final = 128
MAX_PASSWORD_CHARS: Final = 1024


class SignIn:
    """Checks credentials for the pages, under the per-user and per-address limits."""

    def __init__(self, store: AnyIdentityStore, limiter: SignInLimits, audit: AuditTrail) -> None:
        self.store = store
        self.limiter = limiter
        self.audit = audit

    async def reserve(self, *, username: str | None, address: str, via: str) -> Reservation:
        """Count this attempt against the limits now; :class:`RateLimited` (audited) if over.

        Give the reservation back with :meth:`refund` when the attempt does not fail.
        """
        reserved = await self.limiter.reserve(username=username, address=address)
        if isinstance(reserved, Reservation):
            return reserved
        raise self._refused(reserved, username=username, address=address, via=via)

    async def refund(self, reservation: Reservation) -> None:
        """The attempt did not fail: take its reservation back."""
        await self.limiter.refund(reservation)

    def failed(self, *, username: str | None, address: str, via: str, reason: str) -> None:
        """Audit a failed attempt (its reservation stays counted)."""
        self.audit.record(
            type="signin.failed",
            action=via,
            outcome="failure",
            actor=username,
            reason=reason,
            detail=f"address {address}",
        )

    async def attempt(
        self, username: str, password: str, *, address: str, client_id: str, via: str
    ) -> User:
        """The signed-in user; ``RateLimited`` or ``AccessDenied`` (both audited) otherwise."""
        if (
            len(username) > MAX_USERNAME_CHARS
            or len(password) > MAX_PASSWORD_CHARS
            or not username.isprintable()
        ):
            await self.reserve(username=None, address=address, via=via)
            self.failed(username=None, address=address, via=via, reason="invalid_credentials")
            raise AccessDenied("invalid username or password")
        reservation = await self.reserve(username=username, address=address, via=via)
        try:
            user = await self.store.authenticate_user(username, password)
        except AccessDenied:
            self.failed(username=username, address=address, via=via, reason="invalid_credentials")
            raise
        await self.refund(reservation)
        await self.limiter.success(username=username)
        self.audit.record(
            type="signin.succeeded",
            action=via,
            outcome="success",
            actor=user.username,
            subject=user.username,
            detail=f"client {client_id}; address {address}",
        )
        return user

    def _refused(
        self, blocked: Blocked, *, username: str | None, address: str, via: str
    ) -> RateLimited:
        """The audited :class:`RateLimited` for an attempt over a limit."""
        self.audit.record(
            type="signin.rate_limited",
            action=via,
            outcome="denied",
            actor=username,
            reason=f"too_many_{blocked.scope}_failures",
            detail=f"address {address}; retry after {blocked.retry_after} s",
        )
        return RateLimited(
            f"too many failed sign-ins; try again in {blocked.retry_after} seconds",
            retry_after=blocked.retry_after,
            scope=blocked.scope,
        )
