"""Revoked key ids, envelope ids and subjects, as fed by ``control.revocation`` messages.

Bounded: at most ``max_entries`` live revocations (lapsed ones are pruned first); beyond that
the oldest-lapsing one is dropped with a warning rather than the process growing without end.

With a ``journal`` (``SEALFLOW_DATA_DIR/revocations.jsonl``, shared by the daemons of one
machine) every applied revocation is appended, and a daemon that starts loads them before it
takes a message: the control fanout reaches only the processes running when it was sent, so
without it a worker restarted after a revocation would accept what it must refuse.

With a ``shared`` store instead (PostgreSQL, ``store.PgRevocations``, when
``SEALFLOW_DATABASE_URL`` names one) every applied revocation is added to it, and a daemon on
any host loads the live ones before it takes a message. A revocation is enforced in memory at
once either way; one the shared store did not take is kept and offered again (:meth:`offer`).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import structlog
from pydantic import ValidationError

from schemas import Revocation

__all__ = ["RevocationList", "SharedRevocations"]

_log = structlog.get_logger("sealflow.revocation")

MAX_JOURNAL_BYTES = 16 * 1024 * 1024
"""Most of the journal read at start (about 50,000 revocations)."""


class SharedRevocations(Protocol):
    """Revocations every process of every host reads (``store.PgRevocations``)."""

    async def add(self, revocation: Revocation) -> bool:
        """Record ``revocation`` durably; True if it is new. Raises if the store is away."""
        ...

    async def load(self, now: float) -> list[Revocation]:
        """The revocations that have not lapsed at ``now``. Raises if the store is away."""
        ...


class RevocationList:
    """The envelope's ``Revocations``: a dict lookup per kind on the hot path."""

    def __init__(
        self,
        max_entries: int = 100_000,
        *,
        journal: Path | None = None,
        shared: SharedRevocations | None = None,
    ) -> None:
        self.max_entries = max_entries
        self.journal = journal
        self.shared = shared
        self._until: dict[str, dict[str, float]] = {"kid": {}, "jti": {}, "sub": {}}
        self._seen: set[str] = set()
        self._unshared: dict[str, Revocation] = {}
        self._listeners: list[Callable[[Revocation], object]] = []

    def __len__(self) -> int:
        return sum(len(entries) for entries in self._until.values())

    def add(self, revocation: Revocation) -> None:
        """Start enforcing ``revocation`` (idempotent; a later ``until`` extends it).

        It is appended to the journal first, so it is enforced only once it is durable. With a
        shared store it is enforced at once and queued for :meth:`share`.
        """
        new = revocation.revocation_id not in self._seen
        if self.journal is not None and new:
            self._append(revocation)
        if self.shared is not None and new:
            if len(self._unshared) < self.max_entries:
                self._unshared[revocation.revocation_id] = revocation
            else:
                _log.error("revocation.not_shared", revocation_id=revocation.revocation_id)
        self._apply(revocation)
        for listener in self._listeners:
            listener(revocation)

    def on_revoked(self, listener: Callable[[Revocation], object]) -> None:
        """Call ``listener`` with each revocation :meth:`add` applies from now on (the gateway
        closes the revoked subject's open event streams with it)."""
        self._listeners.append(listener)

    @property
    def unshared(self) -> int:
        """How many applied revocations the shared store has not taken yet."""
        return len(self._unshared)

    async def share(self) -> int:
        """Add the revocations applied since the last call to the shared store; returns how
        many it took. Raises (keeping the rest for the next call) if the store is away."""
        if self.shared is None:
            return 0
        shared = 0
        for revocation_id, revocation in list(self._unshared.items()):
            await self.shared.add(revocation)
            del self._unshared[revocation_id]
            shared += 1
        return shared

    async def offer(self) -> None:
        """:meth:`share`, but a store that is away is logged, not raised: what it did not take
        is kept, enforced here already, and offered again by the next call."""
        try:
            await self.share()
        except Exception as exc:  # noqa: BLE001 - enforced here already; retried, and said
            _log.error(
                "revocation.share_failed",
                error=f"{type(exc).__name__}: {exc}"[:500],
                unshared=self.unshared,
            )

    async def restore_shared(self, now: float | None = None) -> int:
        """Apply the shared store's live revocations (before consuming); returns how many."""
        if self.shared is None:
            return 0
        loaded = await self.shared.load(time.time() if now is None else now)
        for revocation in loaded:
            self._apply(revocation)
        return len(loaded)

    def restore(self, now: float | None = None) -> int:
        """Apply the journal's revocations that have not lapsed; returns how many."""
        if self.journal is None or not self.journal.exists():
            return 0
        moment = time.time() if now is None else now
        restored = skipped = 0
        with self.journal.open("rb") as handle:
            data = handle.read(MAX_JOURNAL_BYTES)
        for line in data.splitlines():
            try:
                revocation = Revocation.model_validate_json(line)
            except ValidationError:
                skipped += 1
                continue
            if revocation.until is not None and revocation.until.timestamp() <= moment:
                continue
            self._apply(revocation)
            restored += 1
        if skipped:
            _log.warning("revocation.journal_lines_skipped", count=skipped)
        return restored

    def _append(self, revocation: Revocation) -> None:
        assert self.journal is not None
        self.journal.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        line = revocation.model_dump_json().encode("utf-8") + b"\n"
        # One O_APPEND write per line: daemons sharing the file never interleave within one.
        fd = os.open(self.journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _apply(self, revocation: Revocation) -> None:
        self._seen.add(revocation.revocation_id)
        until = revocation.until.timestamp() if revocation.until is not None else math.inf
        entries = self._until[revocation.kind]
        entries[revocation.value] = max(until, entries.get(revocation.value, -math.inf))
        if len(self) > self.max_entries:
            self._shrink()

    def revoked(self, *, kid: str, jti: str, sub: str, now: float) -> str | None:
        """The kind of revocation that applies ("kid", "jti", "sub"), or ``None``."""
        for kind, value in (("kid", kid), ("sub", sub), ("jti", jti)):
            until = self._until[kind].get(value)
            if until is not None and now < until:
                return kind
        return None

    def _shrink(self) -> None:
        now = time.time()
        for entries in self._until.values():
            for value in [v for v, until in entries.items() if until <= now]:
                del entries[value]
        while len(self) > self.max_entries:
            kind, value = min(
                ((k, v) for k, entries in self._until.items() for v in entries),
                key=lambda item: self._until[item[0]][item[1]],
            )
            del self._until[kind][value]
            _log.warning("revocation.dropped_for_space", kind=kind, value=value)
