"""The audit daemon's writer: concurrent events share one append and one fsync (group commit),
and each emitter resumes only once its record is on disk."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path

from audit.daemon import AuditWriter
from audit.log import AuditLog
from audit.record import AuditRecord
from keys import SigningKey
from schemas import AuditEvent


class _CountingLog(AuditLog):
    """An audit log that counts its appends (each is one fsync of the segment)."""

    appends: list[int]

    def append(self, events: Sequence[AuditEvent]) -> list[AuditRecord]:
        """Record the batch size, then append as usual."""
        self.appends.append(len(events))
        return super().append(events)


async def test_concurrent_events_share_one_fsync_and_resume_after_it(
    log_dir: Path, signer: SigningKey, make_event: Callable[[], AuditEvent]
) -> None:
    """64 events emitted at once land in far fewer appends, and all are on disk when emit returns."""
    log = _CountingLog.open(log_dir, signer=signer)
    log.appends = []
    writer = AuditWriter(log, batch_max=256, batch_wait=0.0, checkpoint_interval=60.0)
    await writer.start()
    events = [make_event() for _ in range(64)]
    try:
        await asyncio.wait_for(asyncio.gather(*(writer.emit(e) for e in events)), timeout=30)
        assert sum(log.appends) == 64
        assert len(log.appends) <= 4, log.appends
        assert all(event.event_id in log for event in events)
    finally:
        await writer.close()
    with AuditLog.open(log_dir, signer=signer) as reopened:
        assert reopened.last_seq == 64
