"""One sign-in attempt: the rate limits first, then the password, each outcome audited.

Shared by the login page of ``/authorize`` and the device verification page. An attempt over
a limit is refused before the password is checked, so it costs no Argon2 work and cannot
confirm a guessed password.
"""

from __future__ import annotations

from typing import Final

from identity.audit import AuditTrail
from identity.errors import AccessDenied, RateLimited
from identity.ratelimit import LoginLimiter
from identity.store import IdentityStore
from identity.users import User

__all__ = ["MAX_PASSWORD_CHARS", "MAX_USERNAME_CHARS", "SignIn"]

MAX_USERNAME_CHARS: Final = 128
MAX_PASSWORD_CHARS: Final = 1024


class SignIn:
    """Checks credentials for the pages, under the per-user and per-address limits."""

    def __init__(self, store: IdentityStore, limiter: LoginLimiter, audit: AuditTrail) -> None:
        self.store = store
        self.limiter = limiter
        self.audit = audit

    def check_limits(self, *, username: str | None, address: str, via: str) -> None:
        """Raise :class:`RateLimited` (audited) when the address or user is over its limit."""
        blocked = self.limiter.check(username=username, address=address)
        if blocked is None:
            return
        self.audit.record(
            type="signin.rate_limited",
            action=via,
            outcome="denied",
            actor=username,
            reason=f"too_many_{blocked.scope}_failures",
            detail=f"address {address}; retry after {blocked.retry_after} s",
        )
        raise RateLimited(
            f"too many failed sign-ins; try again in {blocked.retry_after} seconds",
            retry_after=blocked.retry_after,
            scope=blocked.scope,
        )

    def failed(self, *, username: str | None, address: str, via: str, reason: str) -> None:
        """Count and audit a failed attempt that never reached the password check."""
        self.limiter.failure(username=username, address=address)
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
        if len(username) > MAX_USERNAME_CHARS or len(password) > MAX_PASSWORD_CHARS:
            self.check_limits(username=None, address=address, via=via)
            self.failed(username=None, address=address, via=via, reason="invalid_credentials")
            raise AccessDenied("invalid username or password")
        self.check_limits(username=username, address=address, via=via)
        try:
            user = await self.store.authenticate_user(username, password)
        except AccessDenied:
            self.failed(username=username, address=address, via=via, reason="invalid_credentials")
            raise
        self.limiter.success(username=username)
        self.audit.record(
            type="signin.succeeded",
            action=via,
            outcome="success",
            actor=user.username,
            subject=user.username,
            detail=f"client {client_id}; address {address}",
        )
        return user
