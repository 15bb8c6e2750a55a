"""Revoked key ids, envelope ids and subjects, as fed by ``control.revocation`` messages.

Bounded: at most ``max_entries`` live revocations (lapsed ones are pruned first); beyond that
the oldest-lapsing one is dropped with a warning rather than the process growing without end.
"""

from __future__ import annotations

import math
import time

import structlog

from schemas import Revocation

__all__ = ["RevocationList"]

_log = structlog.get_logger("sealflow.revocation")


class RevocationList:
    """The envelope's ``Revocations``: a dict lookup per kind on the hot path."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self.max_entries = max_entries
        self._until: dict[str, dict[str, float]] = {"kid": {}, "jti": {}, "sub": {}}

    def __len__(self) -> int:
        return sum(len(entries) for entries in self._until.values())

    def add(self, revocation: Revocation) -> None:
        """Start enforcing ``revocation`` (idempotent; a later ``until`` extends it)."""
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
