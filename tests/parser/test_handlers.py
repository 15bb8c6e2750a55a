"""The parser's ``parse.requested`` handler without a broker: a real parse, replies recorded."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from handler_testing import HandlerRig, recording_runtime, runtime_rig
from sealflow_testing import Env

from broker import ServiceRuntime
from parser import DocumentParser
from parser.daemon import ParserHandlers, ParserSettings
from schemas import ParseCompleted, ParseFailed, ParseRequested
from store import BlobStore


@pytest.fixture(scope="module")
def env(handler_env: Env) -> Env:
    """The module's envelope keys (``handler_env`` of ``tests/conftest.py``)."""
    return handler_env


@pytest.fixture
def runtime(env: Env, tmp_path: Path) -> ServiceRuntime:
    """The parser's runtime, never started: its publisher and audit sink record."""
    return recording_runtime(env, "parser", tmp_path / "data")


@pytest.fixture
def rig(env: Env, runtime: ServiceRuntime) -> HandlerRig:
    """What the parser's handler published, openable by its receivers."""
    return runtime_rig(env, runtime)


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    """An empty blob store."""
    return BlobStore(tmp_path / "blobs")


@pytest.fixture
async def handlers(runtime: ServiceRuntime, blobs: BlobStore) -> AsyncIterator[ParserHandlers]:
    """The handler under test, with a real sandboxed parser process."""
    settings = ParserSettings()
    parser = DocumentParser(settings.limits(), processes=1)
    try:
        yield ParserHandlers(runtime, blobs, parser, settings)
    finally:
        await parser.aclose()


def _request(sha256: str, content_type: str = "text/plain") -> ParseRequested:
    return ParseRequested(
        job_id=secrets.token_hex(16),
        blob_sha256=sha256,
        filename="notes.txt",
        content_type=content_type,
        size=5,
        requested_at=datetime.now(UTC),
    )


async def test_a_parsed_document_is_answered_to_the_worker_for_the_same_user(
    rig: HandlerRig, blobs: BlobStore, handlers: ParserHandlers
) -> None:
    """``parse.completed`` sealed by the parser for the worker, the actor chain extended."""
    request = _request(blobs.put(b"hello world"))
    await handlers.on_parse_requested(*rig.deliver(request, sender="worker", act=("worker",)))
    [reply] = rig.sent("parse.completed")
    assert isinstance(reply.message, ParseCompleted)
    assert reply.message.text == "hello world"
    claims = reply.claims
    assert (claims.iss, claims.aud, claims.sub, claims.job) == (
        "parser",
        "worker",
        "alice",
        request.job_id,
    )
    assert claims.act is not None
    assert (claims.act.sub, claims.act.act and claims.act.act.sub) == ("parser", "worker")
    [event] = rig.audit_events()
    assert (event.type, event.outcome, event.job) == ("document.parsed", "success", request.job_id)


async def test_a_missing_blob_is_answered_with_a_permanent_failure(
    rig: HandlerRig, handlers: ParserHandlers
) -> None:
    """No blob under that digest: ``parse.failed``, permanent, and audited."""
    request = _request(hashlib.sha256(b"never stored").hexdigest())
    await handlers.on_parse_requested(*rig.deliver(request, sender="worker"))
    [reply] = rig.sent("parse.failed")
    assert isinstance(reply.message, ParseFailed)
    assert reply.message.permanent
    [event] = rig.audit_events()
    assert (event.type, event.outcome) == ("document.parse_failed", "failure")
    assert event.reason == reply.message.reason


async def test_a_document_that_is_not_what_it_claims_is_answered_with_its_reason(
    rig: HandlerRig, blobs: BlobStore, handlers: ParserHandlers
) -> None:
    """A "PDF" that is not one fails permanently with the parser's reason, not a retry."""
    request = _request(blobs.put(b"not a pdf at all"), content_type="application/pdf")
    await handlers.on_parse_requested(*rig.deliver(request, sender="worker"))
    [reply] = rig.sent("parse.failed")
    assert reply.message.reason in {"malformed", "unsupported_type"}
    assert reply.claims.aud == "worker"
