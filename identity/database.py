"""What the identity's table classes share: one SQLite connection, a clock and a write lock.

Each concern (users, clients, codes, refresh families, revoked access tokens, device codes)
keeps its rows and SQL in its own module; :class:`identity.store.IdentityStore` puts them
together on one connection. Another backend implements the same per-concern methods.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiosqlite

__all__ = ["Tables"]


class Tables:
    """The connection, clock and lock every identity table class works on."""

    def __init__(self, connection: aiosqlite.Connection, clock: Callable[[], float]) -> None:
        self._db = connection
        self._clock = clock
        self._lock = asyncio.Lock()
