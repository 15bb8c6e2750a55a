"""Live job updates inside one gateway process: the open event streams and what wakes them.

Every ``text/event-stream`` response (``/api/jobs/{id}/events`` and the pages' one stream
``/web/api/events``) holds one :class:`Stream` here, whatever it follows, so the caps count
every open stream: at most ``max_streams`` in all and ``max_streams_per_owner`` per subject
(``429`` beyond). A stream follows job ids; a ``gateway.events`` notice about one of them
wakes it, and it then reads the store for the truth. Waking is a flag, not a queue, so a
burst of notices costs nothing and none is lost. A revocation (``sub``, token ``jti`` or
signing ``kid``) closes the matching streams at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import structlog

from gateway.auth import Principal
from gateway.errors import TooManyRequests
from schemas import Revocation

__all__ = ["EventHub", "JobNotice", "Stream"]

_log = structlog.get_logger("sealflow.gateway.hub")

RETRY_AFTER: Final = {"Retry-After": "30"}
"""When a refused stream may try again (an ``EventSource`` waits its own retry time anyway)."""


@dataclass(frozen=True, slots=True)
class JobNotice:
    """A job changed state (the store holds the truth; this only wakes the watchers)."""

    job_id: str
    state: str


class Stream:
    """One open event stream of one principal: the jobs it follows, and a wake-up flag."""

    def __init__(self, principal: Principal) -> None:
        self.principal = principal
        self.jobs: set[str] = set()
        self.closed_because: str | None = None
        """Why the hub closed this stream (a revocation), or None while it may go on."""
        self._wake = asyncio.Event()

    @property
    def owner(self) -> str:
        """The subject the stream serves."""
        return self.principal.subject

    def wake(self) -> None:
        """Make the stream's current or next :meth:`wait` return now."""
        self._wake.set()

    async def wait(self, timeout: float) -> bool:
        """Wait until woken or ``timeout`` seconds pass; True when woken."""
        try:
            async with asyncio.timeout(timeout):
                await self._wake.wait()
        except TimeoutError:
            return False
        finally:
            self._wake.clear()
        return True


class EventHub:
    """The open streams, capped in all and per owner, and the job ids each one follows."""

    def __init__(self, *, max_streams: int = 1_000, max_streams_per_owner: int = 16) -> None:
        self.max_streams = max_streams
        self.max_streams_per_owner = max_streams_per_owner
        self._streams: set[Stream] = set()
        self._by_owner: dict[str, int] = {}
        self._by_job: dict[str, set[Stream]] = {}

    def __len__(self) -> int:
        return len(self._streams)

    def streams_of(self, owner: str) -> int:
        """How many streams ``owner`` has open."""
        return self._by_owner.get(owner, 0)

    def open(self, principal: Principal) -> Stream:
        """A new stream; :class:`TooManyRequests` when the hub or the owner's share is full."""
        owner = principal.subject
        if len(self._streams) >= self.max_streams:
            raise TooManyRequests(
                "too many live event streams; try again later", headers=RETRY_AFTER
            )
        if self._by_owner.get(owner, 0) >= self.max_streams_per_owner:
            raise TooManyRequests(
                f"at most {self.max_streams_per_owner} live event streams per user; "
                "close one first",
                headers=RETRY_AFTER,
            )
        stream = Stream(principal)
        self._streams.add(stream)
        self._by_owner[owner] = self._by_owner.get(owner, 0) + 1
        return stream

    def close(self, stream: Stream) -> None:
        """Forget ``stream`` and everything it follows (idempotent)."""
        if stream not in self._streams:
            return
        self._streams.discard(stream)
        for job_id in stream.jobs:
            followers = self._by_job.get(job_id)
            if followers is not None:
                followers.discard(stream)
                if not followers:
                    del self._by_job[job_id]
        stream.jobs.clear()
        left = self._by_owner[stream.owner] - 1
        if left:
            self._by_owner[stream.owner] = left
        else:
            del self._by_owner[stream.owner]

    @contextlib.contextmanager
    def stream(self, principal: Principal) -> Iterator[Stream]:
        """A stream open for the length of a ``with`` block."""
        stream = self.open(principal)
        try:
            yield stream
        finally:
            self.close(stream)

    def follow(self, stream: Stream, job_id: str) -> None:
        """Wake ``stream`` on notices about ``job_id`` from now on."""
        if stream not in self._streams or job_id in stream.jobs:
            return
        stream.jobs.add(job_id)
        self._by_job.setdefault(job_id, set()).add(stream)

    def publish(self, notice: JobNotice) -> int:
        """Wake the streams following the notice's job; returns how many."""
        followers = self._by_job.get(notice.job_id, ())
        for stream in followers:
            stream.wake()
        return len(followers)

    def revoke(self, revocation: Revocation) -> int:
        """Close every stream whose principal ``revocation`` names (its ``sub``, its token's
        ``jti`` or the ``kid`` that signed its token); returns how many."""
        if revocation.until is not None and revocation.until <= datetime.now(UTC):
            return 0
        kind, value = revocation.kind, revocation.value
        matching = [
            stream
            for stream in self._streams
            if (kind == "sub" and stream.principal.subject == value)
            or (kind == "jti" and stream.principal.token_jti == value)
            or (kind == "kid" and stream.principal.kid == value)
        ]
        for stream in matching:
            stream.closed_because = f"{kind} revoked"
            self.close(stream)
            stream.wake()
        if matching:
            _log.info("hub.streams_closed", kind=kind, streams=len(matching))
        return len(matching)
