"""``sealflow parser``: consumes ``parser.requests``, parses each blob in a sandboxed process,
and answers ``parse.completed`` or ``parse.failed`` sealed for the worker."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import structlog
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from broker import (
    BrokerSettings,
    Delivery,
    Opened,
    RetryLater,
    ServiceRuntime,
    derived_event_id,
    make_audit_event,
)
from parser import DocumentParser, ParseError, ParseLimits
from parser.document_parser import SANDBOX_USER
from parser.fairness import FairSlots
from schemas import (
    MAX_DOCUMENT_BYTES,
    MAX_TEXT_CHARS,
    ParseCompleted,
    ParseFailed,
    ParseRequested,
)
from store import BlobReader, StoreError, open_blob_reader

__all__ = ["ParserHandlers", "ParserSettings", "serve"]

_log = structlog.get_logger("sealflow.parser")


class ParserSettings(BaseSettings):
    """The parser's limits (``SEALFLOW_PARSER_*``): every document is bounded by them."""

    model_config = SettingsConfigDict(env_prefix="SEALFLOW_PARSER_", extra="ignore")

    health_port: int = Field(default=9102, ge=0, le=65535)
    max_input_bytes: int = Field(default=MAX_DOCUMENT_BYTES, ge=1)
    max_pages: int = Field(default=500, ge=1)
    max_output_chars: int = Field(default=MAX_TEXT_CHARS, ge=1, le=MAX_TEXT_CHARS)
    timeout_seconds: float = Field(default=20.0, gt=0)
    memory_bytes: int = Field(default=512 * 1024 * 1024, ge=64 * 1024 * 1024)
    processes: int = Field(default_factory=lambda: min(32, os.cpu_count() or 1), ge=1, le=32)
    """Sandbox processes parsing at once: one per core by default."""
    prefetch: int = Field(default=256, ge=1, le=1000)
    """Requests taken from the broker at once. They wait here, in per-owner turns, instead of
    first come first served at the broker; none is acked before its answer is published."""
    sandbox_user: str = Field(default=SANDBOX_USER, min_length=1, max_length=32)
    """Whom the sandbox processes run as when the parser is started as root."""
    sandbox_cpu_seconds: int = Field(default=600, ge=4)
    """CPU seconds one sandbox process may use in its life (hard limit); then it is replaced."""

    def limits(self) -> ParseLimits:
        """The limits handed to the sandboxed parser process."""
        return ParseLimits(
            max_input_bytes=self.max_input_bytes,
            max_pages=self.max_pages,
            max_output_chars=self.max_output_chars,
            timeout_seconds=self.timeout_seconds,
            memory_bytes=self.memory_bytes,
            sandbox_cpu_seconds=self.sandbox_cpu_seconds,
        )


class ParserHandlers:
    """The ``parse.requested`` handler, bound to the blob store and the sandboxed parser."""

    def __init__(
        self,
        runtime: ServiceRuntime,
        blobs: BlobReader,
        parser: DocumentParser,
        settings: ParserSettings,
        slots: FairSlots | None = None,
    ) -> None:
        self.runtime = runtime
        self.blobs = blobs
        self.parser = parser
        self.settings = settings
        self.slots = slots if slots is not None else FairSlots(settings.processes)
        """The parse slots, shared among owners in turn (``parser.fairness``)."""

    def routes(self) -> dict[str, Any]:
        """Message type → handler, for the consumer of ``parser.requests``."""
        return {"parse.requested": self.on_parse_requested}

    async def on_parse_requested(self, opened: Opened[ParseRequested], delivery: Delivery) -> None:
        """Wait for the owner's fair turn, read the blob (digest re-checked), parse it within
        limits, answer the worker."""
        request = opened.message
        async with self.slots.slot(opened.claims.sub):
            # The turn may come long after ``open``: a revocation that arrived meanwhile
            # refuses the request here (dead-lettered and audited by the consumer).
            delivery.revalidate()
            started = time.perf_counter()
            try:
                data = await self.blobs.read_blob(
                    request.blob_sha256, max_bytes=self.settings.max_input_bytes
                )
                document = await self.parser.parse(data, request.content_type, request.filename)
            except StoreError as error:
                failure: tuple[str, str] | None = (error.reason, str(error))
            except ParseError as error:
                last_try = delivery.attempt >= self.runtime.settings.max_attempts
                if not error.permanent and not last_try:
                    raise RetryLater(f"{error.reason}: {error.detail}") from error
                failure = (error.reason, error.detail)
            else:
                failure = None
        if failure is not None:
            await self._fail(opened, *failure, permanent=True)
            return
        reply = ParseCompleted(
            job_id=request.job_id,
            blob_sha256=request.blob_sha256,
            text=document.text,
            metadata=dict(document.metadata),
            chunks=list(document.chunks),
            pages=document.pages,
            parser=document.parser,
            duration_ms=int((time.perf_counter() - started) * 1000),
        )
        await self._reply(opened, reply)
        await self._audit(opened, "document.parsed", "success", None)

    async def _fail(
        self, opened: Opened[ParseRequested], reason: str, detail: str, *, permanent: bool
    ) -> None:
        request = opened.message
        _log.warning("document.parse_failed", reason=reason, detail=detail)
        reply = ParseFailed(
            job_id=request.job_id,
            blob_sha256=request.blob_sha256,
            reason=reason,  # type: ignore[arg-type]
            detail=detail[:1000],
            permanent=permanent,
        )
        await self._reply(opened, reply)
        await self._audit(opened, "document.parse_failed", "failure", reason)

    async def _reply(
        self, opened: Opened[ParseRequested], reply: ParseCompleted | ParseFailed
    ) -> None:
        publisher = self.runtime.publisher
        assert publisher is not None
        await publisher.reply(opened, reply, "worker")

    async def _audit(
        self, opened: Opened[ParseRequested], type_: str, outcome: str, reason: str | None
    ) -> None:
        audit = self.runtime.audit
        assert audit is not None
        claims = opened.claims
        await audit.emit(
            make_audit_event(
                # A job parsed again (a redelivery after a crash) is recorded once.
                event_id=derived_event_id("parser", type_, claims.job or claims.jti),
                source="parser",
                type=type_,
                action="parse",
                outcome=outcome,
                actor="parser",
                subject=claims.sub,
                reason=reason,
                job=claims.job,
                trace=claims.trace,
                jti=claims.jti,
            )
        )


async def serve(
    settings: BrokerSettings | None = None,
    parser_settings: ParserSettings | None = None,
    *,
    stop: asyncio.Event | None = None,
) -> None:
    """Run the parser until ``stop`` is set or SIGTERM/SIGINT arrives."""
    settings = settings if settings is not None else BrokerSettings()
    parser_settings = parser_settings if parser_settings is not None else ParserSettings()
    # Deliveries must reach the fair queue: with the broker's usual prefetch, a backlog of one
    # owner would hold every delivery and another owner's request would wait at the broker.
    settings = settings.model_copy(update={"prefetch": parser_settings.prefetch})
    runtime = ServiceRuntime("parser", settings)
    blobs = await open_blob_reader(settings.database_url, settings.data_dir)
    parser = DocumentParser(
        parser_settings.limits(),
        processes=parser_settings.processes,
        sandbox_user=parser_settings.sandbox_user,
    )

    async def setup(rt: ServiceRuntime) -> None:
        rt.consume("parser.requests", ParserHandlers(rt, blobs, parser, parser_settings).routes())

    async def cleanup() -> None:
        await parser.aclose()
        await blobs.close()

    await runtime.run(setup, health_port=parser_settings.health_port, stop=stop, cleanup=cleanup)
