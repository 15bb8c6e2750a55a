"""The parser daemon's handler takes turns by owner: one user's slow backlog cannot hold back
another user's document by more than one parse slot (issue 11 item 2, parser side)."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from broker import Delivery, Opened
from parser import DocumentParser
from parser.daemon import ParserHandlers, ParserSettings
from parser.fairness import FairSlots
from schemas import EnvelopeClaims, ParseCompleted, ParseFailed, ParseRequested
from store import BlobStore

pytestmark = pytest.mark.timeout(120)

SLOW_HTML = b"<div>" * 400_000
"""Nesting that takes the parser far longer than the test's 1 s limit: a ``timeout``."""


class _Recorder:
    """Stands in for the service runtime: records what the handler publishes, in order."""

    def __init__(self) -> None:
        self.settings = SimpleNamespace(max_attempts=3)
        self.publisher = self
        self.audit = self
        self.answered: list[str] = []

    async def reply(
        self, opened: Opened[ParseRequested], reply: ParseCompleted | ParseFailed, audience: str
    ) -> None:
        self.answered.append(reply.job_id)

    async def emit(self, event: object) -> None:
        """Audit events are not what this test is about."""


class _WatchedParser(DocumentParser):
    """A ``DocumentParser`` that says when its first parse begins."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.first_parse = asyncio.Event()

    async def parse(self, data: bytes, content_type: str, filename: str) -> Any:
        self.first_parse.set()
        return await super().parse(data, content_type, filename)


def _opened(owner: str, blob: str, content_type: str) -> Opened[ParseRequested]:
    job = uuid.uuid4().hex
    request = ParseRequested(
        job_id=job,
        blob_sha256=blob,
        filename="doc",
        content_type=content_type,
        size=1,
        requested_at=datetime.now(UTC),
    )
    claims = EnvelopeClaims.model_construct(
        sub=owner, job=job, jti=uuid.uuid4().hex, trace=None, act=None
    )
    return Opened(claims=claims, message=request, body=b"", kid="test")


async def test_a_users_document_is_answered_after_one_slow_document_of_another_users_backlog(
    tmp_path: Path,
) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    slow, quick = blobs.put(SLOW_HTML), blobs.put(b"hello")
    settings = ParserSettings(processes=1, timeout_seconds=1)
    recorder = _Recorder()
    delivery = Delivery(
        queue="parser.requests", routing_key="parse.requested", attempt=1, redelivered=False
    )
    async with _WatchedParser(settings.limits(), processes=1) as parser:
        handlers = ParserHandlers(recorder, blobs, parser, settings)  # type: ignore[arg-type]
        backlog = [_opened("alice", slow, "text/html") for _ in range(2)]
        bobs = _opened("bob", quick, "text/plain")
        # Alice's backlog is delivered first, and her first document is being parsed when
        # Bob's arrives.
        tasks = [
            asyncio.create_task(handlers.on_parse_requested(opened, delivery)) for opened in backlog
        ]
        await asyncio.wait_for(parser.first_parse.wait(), timeout=30)
        tasks.append(asyncio.create_task(handlers.on_parse_requested(bobs, delivery)))
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=100)
    jobs = [opened.message.job_id for opened in backlog]
    assert recorder.answered == [jobs[0], bobs.message.job_id, jobs[1]]


def test_the_parser_runs_one_sandbox_per_core_and_takes_a_deep_prefetch_by_default() -> None:
    settings = ParserSettings()
    assert settings.processes == min(32, os.cpu_count() or 1)
    assert settings.prefetch >= 16 * settings.processes


class _RevokedMeanwhile(Exception):
    """What the consumer's revalidation raises when a revocation arrived during the wait."""


async def test_a_request_revalidates_when_its_turn_comes_and_a_refusal_stops_it_unparsed(
    tmp_path: Path,
) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    blob = blobs.put(b"hello")
    settings = ParserSettings(processes=1)
    recorder = _Recorder()
    slots = FairSlots(1)
    revalidated: list[bool] = []
    busy, release = asyncio.Event(), asyncio.Event()

    def revalidate() -> None:
        revalidated.append(release.is_set())
        raise _RevokedMeanwhile("sub")

    delivery = Delivery(
        queue="parser.requests",
        routing_key="parse.requested",
        attempt=1,
        redelivered=False,
        revalidate=revalidate,
    )

    async def hold_the_slot() -> None:
        async with slots.slot("bob"):
            busy.set()
            await release.wait()

    holder = asyncio.create_task(hold_the_slot())
    await asyncio.wait_for(busy.wait(), timeout=5)
    async with DocumentParser(settings.limits(), processes=1) as parser:
        handlers = ParserHandlers(recorder, blobs, parser, settings, slots)  # type: ignore[arg-type]
        waiting = asyncio.create_task(
            handlers.on_parse_requested(_opened("alice", blob, "text/plain"), delivery)
        )
        await asyncio.sleep(0)  # one turn of the loop: it waits for the slot bob holds
        assert revalidated == []
        release.set()
        with pytest.raises(_RevokedMeanwhile):
            await asyncio.wait_for(waiting, timeout=10)
        assert revalidated == [True]  # checked once its turn came, not before
        assert parser.sandbox_pids == ()  # nothing was parsed
    await holder
    assert recorder.answered == []
