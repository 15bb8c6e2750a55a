"""Which uploaded blobs may be removed again when an upload does not become a job.

Blobs are content-addressed, so two uploads of the same bytes share one file. A blob an
upload stored is deleted on failure only if no recorded job names it and no other upload in
this process is between storing it and recording its job.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import structlog

from store import BlobStore, JobStore

__all__ = ["BlobKeeper"]

_log = structlog.get_logger("sealflow.gateway.blobs")


class BlobKeeper:
    """Reference counts of blobs held by uploads in flight, and their safe removal."""

    def __init__(self, blobs: BlobStore, store: JobStore) -> None:
        self.blobs = blobs
        self.store = store
        self._held: Counter[str] = Counter()
        self._lock = asyncio.Lock()

    def hold(self, sha256: str) -> None:
        """An upload stored (or found) this blob and will record a job for it or release it."""
        self._held[sha256] += 1

    def release(self, sha256: str) -> None:
        """The upload recorded its job (the job now keeps the blob alive)."""
        self._held[sha256] -= 1
        if self._held[sha256] <= 0:
            del self._held[sha256]

    async def discard(self, sha256: str) -> bool:
        """The upload gave up: release the blob and delete it if nothing else uses it."""
        self.release(sha256)
        async with self._lock:
            if self._held[sha256] > 0 or await self.store.blob_in_use(sha256):
                return False
            deleted = await asyncio.to_thread(self.blobs.delete, sha256)
        _log.info("blob.discarded", sha256=sha256, deleted=deleted)
        return deleted
