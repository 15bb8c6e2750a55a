"""The one consumer loop every daemon uses: open the envelope → run the handler → ack.

A message is acknowledged only after its handler returned (its effect is durable) or after it
was dead-lettered or scheduled for retry with a confirmed publish. A rejected envelope is
dead-lettered with ``x-sealflow-reject-reason`` and audited; its handler never runs.

The id a delivery carries is spent when it is opened, whatever the handling's outcome: a retry
goes back with the original envelope and a retry ticket this service seals for itself
(``x-sealflow-retry``, a fresh single-use id and the signed attempt count), so a copy of the
envelope, of the retry, or of a dead-lettered message is refused as ``replay``.

With ``shared_spent`` (PostgreSQL, when replicas run), an id that is new to this process is
also claimed there before its handler runs, so a copy delivered to another replica is refused
as ``replay`` just the same. A local hit costs no round trip. When the shared store does not
answer, the message is put back (nack, requeue) after a pause and never handled unchecked.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aio_pika
import structlog
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue
from aio_pika.exceptions import AMQPError
from opentelemetry.trace import StatusCode

from broker.auditing import AuditSink, derived_event_id, make_audit_event
from broker.connection import CANCEL_TIMEOUT
from broker.envelope import ENVELOPE_HEADER, RETRY_HEADER, EnvelopeError, Opened, Opener, Reason
from broker.errors import PermanentFailure, PublishFailed
from broker.metrics import (
    HANDLER_SECONDS,
    MESSAGES_HANDLED,
    MESSAGES_REJECTED,
    MESSAGES_RETRIED,
    VERIFY_SECONDS,
)
from broker.publisher import Publisher, amqp_message
from broker.settings import BrokerSettings
from broker.spent_ids import SharedSpentIds
from broker.topology import ATTEMPT_HEADER, LETTER_ID_HEADER, REJECT_REASON_HEADER, Topology
from broker.tracing import TRACEPARENT_HEADER, parent_context, processing
from schemas import AuditEvent

__all__ = ["Consumer", "Delivery", "Handler"]

_log = structlog.get_logger("sealflow.consumer")

SHARED_UNAVAILABLE_PAUSE = 1.0
"""Seconds a consumer waits before it puts back a message the shared store could not check."""


def _nothing_revoked() -> None:
    """The default :attr:`Delivery.revalidate` of a delivery made by hand (tests)."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """What a handler may want to know about the AMQP delivery besides the opened envelope.

    ``attempt`` is 1, or the count of this service's own signed retry ticket. A handler that
    waits before it acts (for a parse slot, say) calls ``revalidate()`` when it starts: it
    raises ``EnvelopeError(revoked)`` if a revocation arrived meanwhile, and the consumer then
    dead-letters and audits the message as it would at ``open``.
    """

    queue: str
    routing_key: str
    attempt: int
    redelivered: bool
    revalidate: Callable[[], None] = field(default=_nothing_revoked, compare=False)


Handler = Callable[[Opened[Any], Delivery], Awaitable[None]]


class Consumer:
    """Consumes one queue for one service, dispatching by message type to ``handlers``.

    ``publisher`` must be the consuming service's own: it seals the retry tickets, and an
    ``Opener`` accepts only tickets its own service sealed (others are ``retry_mismatch``).
    ``shared_spent`` is the spent-id store every replica of the service shares, if any.
    """

    def __init__(
        self,
        *,
        queue: str,
        channel: AbstractChannel,
        topology: Topology,
        opener: Opener,
        publisher: Publisher,
        audit: AuditSink,
        handlers: Mapping[str, Handler],
        settings: BrokerSettings,
        shared_spent: SharedSpentIds | None = None,
    ) -> None:
        self.queue = queue
        self.channel = channel
        self.topology = topology
        self.opener = opener
        self.publisher = publisher
        self.audit = audit
        self.handlers = {k: v for k, v in handlers.items() if not k.endswith(".*")}
        self._prefix_handlers = [(k[:-1], v) for k, v in handlers.items() if k.endswith(".*")]
        self.settings = settings
        self.shared_spent = shared_spent
        self._holding: set[str] = set()
        self.service = opener.service
        self._consumer_tag: str | None = None
        self._queue: AbstractQueue | None = None
        self._verify_seconds = VERIFY_SECONDS.labels(self.service)
        self._per_type: dict[str, tuple[Any, Any]] = {}
        self._in_flight: set[asyncio.Task[Any]] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def consuming(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._consumer_tag is not None

    async def start(self) -> None:
        """Start taking messages from the queue."""
        # Declared (not merely looked up) on this channel: a robust channel restores only the
        # queues declared through it, and with them their consumers, after a reconnect.
        declared = await self.topology.declare(self.channel, queues=(self.queue,))
        self._queue = declared.queues[self.queue]
        self._consumer_tag = await self._queue.consume(self._on_message)
        _log.info("consumer.started", queue=self.queue)

    async def stop(self, grace: float | None = None) -> None:
        """Stop taking messages, then wait (bounded) for in-flight handlers to finish."""
        grace = self.settings.shutdown_grace if grace is None else grace
        if self._consumer_tag is not None:
            tag, self._consumer_tag = self._consumer_tag, None
            try:
                assert self._queue is not None
                # A closed channel has no consumer left to cancel, and waiting on it would hang
                # a shutdown while the broker is away.
                if not self.channel.is_closed:
                    await self._queue.cancel(tag, timeout=CANCEL_TIMEOUT)
            except (AMQPError, ConnectionError, RuntimeError, TimeoutError) as exc:
                _log.warning("consumer.cancel_failed", queue=self.queue, error=str(exc))
        try:
            await asyncio.wait_for(self._idle.wait(), timeout=grace)
        except TimeoutError:
            _log.warning("consumer.stop_timeout", queue=self.queue, in_flight=len(self._in_flight))
        _log.info("consumer.stopped", queue=self.queue)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
            self._idle.clear()
        try:
            structlog.contextvars.bind_contextvars(job=None, jti=None, trace=None)
            await self._process(message)
        finally:
            if task is not None:
                self._in_flight.discard(task)
                if not self._in_flight:
                    self._idle.set()

    async def _process(self, message: AbstractIncomingMessage) -> None:
        started = time.perf_counter()
        try:
            opened = self.opener.open(
                message.body,
                message.headers,
                message_id=message.message_id,
                message_type=message.type,
                redelivered=bool(message.redelivered),
            )
            parent = parent_context(message.headers, opened.claims)
        except EnvelopeError as error:
            self._verify_seconds.observe(time.perf_counter() - started)
            await self._on_rejected(message, error)
            return
        self._verify_seconds.observe(time.perf_counter() - started)
        claims = opened.claims
        structlog.contextvars.bind_contextvars(job=claims.job, jti=claims.jti, trace=claims.trace)
        with processing(
            self.service, self.queue, claims, parent, exchange=message.exchange or ""
        ) as span:
            outcome = await self._claim_and_handle(message, opened, started)
            if span is not None:
                span.set_attribute("sealflow.outcome", outcome)
                if outcome != "ok":
                    span.set_status(StatusCode.ERROR, outcome)

    async def _claim_and_handle(
        self, message: AbstractIncomingMessage, opened: Opened[Any], started: float
    ) -> str:
        """Spend the id across replicas when a shared store is configured, then handle."""
        if self.shared_spent is None:
            return await self._handle(message, opened, started)
        refused = await self._claim_shared(message, opened)
        if refused is not None:
            return refused
        try:
            return await self._handle(message, opened, started)
        finally:
            self._holding.discard(opened.spent_id)

    async def _claim_shared(
        self, message: AbstractIncomingMessage, opened: Opened[Any]
    ) -> str | None:
        """Spend the delivery's id across replicas: ``None`` when this delivery holds it, else
        how it ended — refused as a replay (another delivery took it) or put back (the shared
        store did not answer)."""
        assert self.shared_spent is not None
        spent_id = opened.spent_id
        try:
            won = await self.shared_spent.claim(
                spent_id,
                opened.claims.exp + self.opener.leeway,
                now=time.time(),
                redelivered=bool(message.redelivered),
            )
        except Exception as exc:  # noqa: BLE001 - an unanswered check is no check: never handle
            _log.error(
                "spent_ids.shared_unavailable",
                error=f"{type(exc).__name__}: {exc}"[:500],
                action="requeue",
            )
            await asyncio.sleep(SHARED_UNAVAILABLE_PAUSE)
            await self._nack(message)
            return "requeued"
        if not won:
            detail = f"jti {spent_id} was already taken by a replica"
            replay = EnvelopeError(Reason.REPLAY, detail, claims=opened.claims)
            await self._on_rejected(message, replay, opened=opened)
            return Reason.REPLAY.value
        self._holding.add(spent_id)
        return None

    async def _handle(
        self, message: AbstractIncomingMessage, opened: Opened[Any], started: float
    ) -> str:
        """Run the handler of an opened delivery and settle it; returns how it ended."""
        claims = opened.claims
        handler = self._handler_for(claims.typ)
        if handler is None:
            await self._dead_letter(
                message,
                "no_handler",
                f"{self.service} has no handler for {claims.typ}",
                opened=opened,
            )
            return "no_handler"
        delivery = Delivery(
            queue=self.queue,
            routing_key=message.routing_key or claims.typ,
            attempt=opened.attempt,
            redelivered=bool(message.redelivered),
            revalidate=lambda: self.opener.revalidate(opened),
        )
        handler_started = time.perf_counter()
        try:
            # A message may have waited, prefetched, since it was opened: a revocation that
            # arrived meanwhile refuses it before its handler acts.
            delivery.revalidate()
            await handler(opened, delivery)
        except EnvelopeError as error:
            await self._on_rejected(message, error, opened=opened)
            return str(error.reason)
        except PermanentFailure as failure:
            _log.warning("handler.permanent_failure", type=claims.typ, detail=failure.detail)
            await self._dead_letter(message, failure.reason, failure.detail, opened=opened)
            MESSAGES_HANDLED.labels(self.service, claims.typ, "dead_lettered").inc()
            return failure.reason
        except Exception as failure:  # noqa: BLE001 - any other handler failure is retried, bounded
            _log.warning(
                "handler.failed", type=claims.typ, attempt=delivery.attempt, exc_info=failure
            )
            await self._retry_or_dead_letter(message, opened, failure)
            return "failed"
        finally:
            handler_seconds, handled_ok = self._metrics_for(claims.typ)
            handler_seconds.observe(time.perf_counter() - handler_started)
        await self._ack(message, opened)
        handled_ok.inc()
        _log.info(
            "message.handled",
            type=claims.typ,
            ms=round((time.perf_counter() - started) * 1000, 2),
        )
        return "ok"

    def _metrics_for(self, message_type: str) -> tuple[Any, Any]:
        """The handler-time histogram and ``ok`` counter of a type, looked up once."""
        metrics = self._per_type.get(message_type)
        if metrics is None:
            metrics = (
                HANDLER_SECONDS.labels(self.service, message_type),
                MESSAGES_HANDLED.labels(self.service, message_type, "ok"),
            )
            self._per_type[message_type] = metrics
        return metrics

    def _handler_for(self, message_type: str) -> Handler | None:
        handler = self.handlers.get(message_type)
        if handler is None:
            for prefix, candidate in self._prefix_handlers:
                if message_type.startswith(prefix):
                    return candidate
        return handler

    async def _on_rejected(
        self,
        message: AbstractIncomingMessage,
        error: EnvelopeError,
        *,
        opened: Opened[Any] | None = None,
    ) -> None:
        """Dead-letter and audit a refused envelope (``opened``: refused after it was opened)."""
        claims = error.claims
        if claims is not None:
            structlog.contextvars.bind_contextvars(
                job=claims.job, jti=claims.jti, trace=claims.trace
            )
        if error.transient:
            _log.warning("envelope.deferred", reason=str(error.reason), detail=error.detail)
            await asyncio.sleep(1.0)
            await self._nack(message)
            return
        if error.reason is Reason.REPLAY and message.redelivered:
            # The broker redelivered a message whose handling had completed (the ack was lost).
            _log.info("envelope.duplicate_delivery", detail=error.detail)
            MESSAGES_HANDLED.labels(self.service, message.type or "?", "duplicate").inc()
            await self._ack(message, None)
            return
        MESSAGES_REJECTED.labels(self.service, str(error.reason)).inc()
        _log.warning("envelope.rejected", reason=str(error.reason), detail=error.detail)
        event = make_audit_event(
            source=self.service,
            type="envelope.rejected",
            action=f"open {message.type or 'unknown'}"[:64],
            outcome="rejected",
            actor=claims.iss if claims is not None else None,
            subject=claims.sub if claims is not None else None,
            reason=str(error.reason),
            job=claims.job if claims is not None else None,
            trace=claims.trace if claims is not None else None,
            jti=claims.jti if claims is not None else None,
            detail=f"{error.detail}; queue={self.queue}; "
            f"message_id={_printable(message.message_id)} (unverified)",
            event_id=_decision_id(self.service, "envelope.rejected", message, str(error.reason)),
        )
        await self._dead_letter(
            message, str(error.reason), error.detail, event=event, opened=opened
        )

    async def _retry_or_dead_letter(
        self, message: AbstractIncomingMessage, opened: Opened[Any], failure: BaseException
    ) -> None:
        attempt = opened.attempt
        if attempt >= self.settings.max_attempts:
            await self._dead_letter(
                message,
                "retries_exhausted",
                f"failed {attempt} times; last: {type(failure).__name__}: {failure}",
                opened=opened,
            )
            MESSAGES_HANDLED.labels(self.service, message.type or "?", "dead_lettered").inc()
            return
        delay = min(
            self.settings.retry_base_delay * 2 ** (attempt - 1),
            self.settings.retry_max_delay,
        ) * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not security
        # Only the envelope and a fresh ticket go back: nothing else a publisher set survives.
        headers = {
            ENVELOPE_HEADER: (message.headers or {})[ENVELOPE_HEADER],
            RETRY_HEADER: self.publisher.sealer.seal_retry(opened.claims, attempt + 1),
        }
        traceparent = (message.headers or {}).get(TRACEPARENT_HEADER)
        if traceparent is not None:
            headers[TRACEPARENT_HEADER] = traceparent
        retry = _copy_of(message, headers, expiration=delay)
        try:
            await self.publisher.publish_raw(
                retry, routing_key=self.topology.retry_queue(self.queue)
            )
        except PublishFailed as exc:
            _log.error("retry.publish_failed", error=exc.detail)
            await self._nack(message)
            return
        MESSAGES_RETRIED.labels(self.service, message.type or "?").inc()
        _log.info("handler.retry_scheduled", attempt=attempt + 1, delay=round(delay, 3))
        await self._ack(message, opened)

    async def _dead_letter(
        self,
        message: AbstractIncomingMessage,
        reason: str,
        detail: str,
        *,
        event: AuditEvent | None = None,
        opened: Opened[Any] | None = None,
    ) -> None:
        """Copy ``message`` to its DLQ with the reason, audit the decision, and only then ack.

        Acking last means a crash or a broker outage in between loses no decision: the message
        comes back, is refused again, and the audit log (which deduplicates by event id, fixed
        by the message and reason) records it once. Each letter gets its own id, so a message
        and its copies are told apart in the DLQ.
        """
        headers = dict(message.headers or {})
        headers[LETTER_ID_HEADER] = secrets.token_hex(16)
        if opened is not None:
            headers[ATTEMPT_HEADER] = opened.attempt
        headers[REJECT_REASON_HEADER] = reason
        headers["x-sealflow-reject-detail"] = detail[:500]
        headers["x-sealflow-rejected-by"] = self.service
        headers["x-sealflow-rejected-at"] = datetime.now(UTC).isoformat()
        headers["x-sealflow-routing-key"] = message.routing_key or ""
        headers["x-sealflow-queue"] = self.queue
        dead = _copy_of(message, headers)
        try:
            await self.publisher.publish_raw(
                dead, routing_key=self.topology.queue(f"{self.queue}.dlq")
            )
        except PublishFailed as exc:
            _log.error("dead_letter.publish_failed", reason=reason, error=exc.detail)
            await self._nack(message)
            return
        if event is None:
            context = structlog.contextvars.get_contextvars()
            event = make_audit_event(
                source=self.service,
                type="message.dead_lettered",
                action=f"handle {message.type or 'unknown'}"[:64],
                outcome="failure",
                reason=reason[:64],
                detail=detail,
                job=context.get("job"),
                jti=context.get("jti"),
                trace=context.get("trace"),
                event_id=_decision_id(self.service, "message.dead_lettered", message, reason),
            )
        try:
            await self.audit.emit(event)
        except PublishFailed as exc:
            _log.error("audit.emit_failed", error=exc.detail)
            await asyncio.sleep(1.0)  # the broker is struggling: do not spin on the message
            await self._nack(message)
            return
        await self._ack(message, opened)

    async def _ack(self, message: AbstractIncomingMessage, opened: Opened[Any] | None) -> None:
        """Settle the delivery: its spent id may never be taken again, then ack it.

        The shared id is completed only by the consumer that won its claim: a replica that
        refused a copy must not settle the id another replica is still handling.
        """
        if opened is not None:
            self.opener.complete(opened.spent_id)
            if self.shared_spent is not None and opened.spent_id in self._holding:
                self._holding.discard(opened.spent_id)
                try:
                    await self.shared_spent.complete(opened.spent_id)
                except Exception as exc:  # noqa: BLE001 - the id stays pending until exp; say so
                    _log.error(
                        "spent_ids.shared_complete_failed",
                        error=f"{type(exc).__name__}: {exc}"[:500],
                    )
        try:
            await message.ack()
        except (AMQPError, ConnectionError, RuntimeError) as exc:
            # The broker will redeliver it; the replay cache and idempotent handlers absorb that.
            _log.warning("ack.failed", error=str(exc))

    async def _nack(self, message: AbstractIncomingMessage) -> None:
        try:
            await message.nack(requeue=True)
        except (AMQPError, ConnectionError, RuntimeError) as exc:
            _log.warning("nack.failed", error=str(exc))


def _decision_id(service: str, kind: str, message: AbstractIncomingMessage, reason: str) -> str:
    """One audit id per refused message and reason, however often it comes back.

    The body's digest is part of it, so distinct messages that share (or lack) an id stay
    distinct records.
    """
    digest = hashlib.sha256(message.body).hexdigest()
    return derived_event_id(service, kind, str(message.message_id), digest, reason)


def _copy_of(
    message: AbstractIncomingMessage, headers: Mapping[str, Any], *, expiration: float | None = None
) -> aio_pika.Message:
    """``message`` with other headers, for its retry queue or its DLQ."""
    return amqp_message(
        message.body,
        headers=headers,
        message_id=message.message_id,
        type=message.type,
        correlation_id=message.correlation_id,
        app_id=message.app_id,
        timestamp=message.timestamp,
        expiration=expiration,
        content_type=message.content_type,
    )


def _printable(value: str | None) -> str:
    if value is None:
        return "-"
    return "".join(ch if ch.isprintable() else "?" for ch in value[:64])
