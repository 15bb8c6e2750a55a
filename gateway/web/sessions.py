"""Browser sessions kept server-side: the cookie only names one (``sid``), tokens stay here.

Two bounded stores: sign-ins in progress (``PendingLogin``, short-lived, keyed by ``state``)
and signed-in sessions (``WebSession``, idle and absolute lifetimes). When a store is full the
least recently used entry goes, so a flood of ``/login`` requests can evict only other pending
sign-ins, never a signed-in session.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Generic, TypeVar

__all__ = ["BoundedStore", "PendingLogin", "SessionStores", "TokenSet", "WebSession", "new_id"]

ID_BYTES: Final = 32


def new_id() -> str:
    """A fresh unguessable id (session ids, state, nonce, CSRF tokens)."""
    return secrets.token_urlsafe(ID_BYTES)


@dataclass(frozen=True, slots=True)
class TokenSet:
    """What the token endpoint gave: the access token, its expiry, refresh and ID tokens."""

    access_token: str
    expires_at: float
    refresh_token: str | None
    id_token: str | None


@dataclass(slots=True)
class PendingLogin:
    """A sign-in started at ``/login``: what ``/callback`` must find again."""

    state: str
    nonce: str
    verifier: str
    return_to: str
    browser: str
    """The id of the pre-sign-in cookie session that started it (binds state to the browser)."""
    created_at: float


@dataclass(slots=True)
class WebSession:
    """A signed-in browser: who, with which tokens, and its CSRF token."""

    sid: str
    subject: str
    roles: tuple[str, ...]
    scopes: tuple[str, ...]
    tokens: TokenSet
    csrf: str
    created_at: float
    last_seen: float
    flash: list[str] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    """Held while refreshing: a refresh token is single use, so only one request spends it."""

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    def can(self, scope: str) -> bool:
        return scope in self.scopes


V = TypeVar("V")


class BoundedStore(Generic[V]):
    """An LRU map with a size cap and a per-entry lifetime check."""

    def __init__(self, max_entries: int, alive: Callable[[V, float], bool]) -> None:
        self.max_entries = max_entries
        self._alive = alive
        self._items: OrderedDict[str, V] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str, now: float) -> V | None:
        """The live entry under ``key`` (now the most recently used), or None."""
        item = self._items.get(key)
        if item is None:
            return None
        if not self._alive(item, now):
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return item

    def put(self, key: str, item: V) -> None:
        """Keep ``item``, evicting the least recently used entry when full."""
        self._items[key] = item
        self._items.move_to_end(key)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)

    def pop(self, key: str) -> V | None:
        """Remove and return the entry under ``key``."""
        return self._items.pop(key, None)

    def values(self) -> list[V]:
        return list(self._items.values())


class SessionStores:
    """The gateway's browser sessions and pending sign-ins."""

    def __init__(
        self,
        *,
        max_sessions: int,
        max_pending: int,
        idle_seconds: float,
        max_seconds: float,
        login_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.clock = clock
        self.idle_seconds = idle_seconds
        self.sessions: BoundedStore[WebSession] = BoundedStore(
            max_sessions,
            lambda s, now: now - s.last_seen < idle_seconds and now - s.created_at < max_seconds,
        )
        self.pending: BoundedStore[PendingLogin] = BoundedStore(
            max_pending, lambda p, now: now - p.created_at < login_seconds
        )

    def session(self, sid: str) -> WebSession | None:
        """The live session ``sid``; marks it seen."""
        now = self.clock()
        session = self.sessions.get(sid, now)
        if session is not None:
            session.last_seen = now
        return session

    def start(
        self, *, subject: str, roles: tuple[str, ...], scopes: tuple[str, ...], tokens: TokenSet
    ) -> WebSession:
        """A new signed-in session under a new id (the id is never one the browser chose)."""
        now = self.clock()
        session = WebSession(
            sid=new_id(),
            subject=subject,
            roles=roles,
            scopes=scopes,
            tokens=tokens,
            csrf=new_id(),
            created_at=now,
            last_seen=now,
        )
        self.sessions.put(session.sid, session)
        return session

    def end(self, sid: str) -> WebSession | None:
        """Forget session ``sid``; returns it so its tokens can be revoked."""
        return self.sessions.pop(sid)

    def begin_login(self, *, return_to: str, browser: str) -> PendingLogin:
        """A new pending sign-in with fresh ``state``, ``nonce`` and PKCE verifier."""
        login = PendingLogin(
            state=new_id(),
            nonce=new_id(),
            verifier=secrets.token_urlsafe(48),
            return_to=return_to,
            browser=browser,
            created_at=self.clock(),
        )
        self.pending.put(login.state, login)
        return login

    def take_login(self, state: str) -> PendingLogin | None:
        """The pending sign-in of ``state``, removed (a state is single use)."""
        login = self.pending.get(state, self.clock())
        if login is not None:
            self.pending.pop(state)
        return login
