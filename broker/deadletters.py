"""Dead letters: list the ``<queue>.dlq`` queues without consuming them, and take one by id.

AMQP 0-9-1 has no browse. A listing ``basic.get``s each message with manual acknowledgement,
holds it unacked until the bound is reached, then ``basic.nack``s every one with
``requeue=True``, in the order they came. Caveats, all of them the broker's:

- while a listing runs, the messages it holds are invisible to every other reader;
- AMQP does not promise where a requeued message goes. On the RabbitMQ tested here (3.10,
  quorum queues) returned messages go behind those still waiting: a listing that saw the
  whole DLQ leaves its order as it was, but a listing cut short by its limit moves the
  messages it saw to the back, so the next listing shows the ones after them;
- each listing is a delivery: ``x-delivery-count`` goes up by one. RabbitMQ 4.0-4.2 count
  every return against a quorum queue's ``delivery-limit`` (default 20) and drop the message
  past it (a DLQ has no dead-letter exchange of its own); 4.3+ do not count ``basic.nack``.
  On 4.0-4.2 set a policy ``delivery-limit: -1`` on the ``.dlq`` queues.

Within one process every operation holds one lock, so a listing never hides a message from a
concurrent :meth:`DeadLetterQueues.take`. Several gateways share no lock: a take may miss a
message another gateway's listing holds at that moment (it answers "not found"; retry).
"""

from __future__ import annotations

import asyncio
import binascii
import hashlib
import json
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Final

import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractIncomingMessage,
    AbstractQueue,
)
from aio_pika.exceptions import AMQPError

from broker.envelope import ENVELOPE_HEADER
from broker.errors import BrokerUnavailable
from broker.topology import (
    ATTEMPT_HEADER,
    LETTER_ID_HEADER,
    QUEUE_BINDINGS,
    REJECT_REASON_HEADER,
    Topology,
)

__all__ = [
    "DEFAULT_LIST_LIMIT",
    "MAX_LIST_LIMIT",
    "DeadLetter",
    "DeadLetterPage",
    "DeadLetterQueues",
    "TakenDeadLetter",
    "unverified_claims",
]

DEFAULT_LIST_LIMIT: Final = 100
MAX_LIST_LIMIT: Final = 500
_MAX_ID_CHARS: Final = 64
_MAX_TOKEN_CHARS: Final = 8192
_MAX_HEADER_TEXT: Final = 500
_LETTER_ID: Final = re.compile(r"[0-9a-f]{32}")
_COPY_REFUSAL: Final = (
    "it is a copy of an envelope that had already been handled (refused as replay); "
    "its original was handled or is dead-lettered on its own"
)

_log = structlog.get_logger("sealflow.deadletters")


def _text(value: object, limit: int = _MAX_HEADER_TEXT) -> str | None:
    """A header or property value as printable text, bounded; None when absent or not text."""
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("utf-8", errors="replace")
    if not isinstance(value, str) or not value:
        return None
    return "".join(ch if ch.isprintable() else "?" for ch in value[:limit])


def _deaths(headers: Mapping[str, object]) -> tuple[int, str | None]:
    """The total of ``x-death`` counts and the reason of the latest death (the broker's)."""
    entries = headers.get("x-death")
    if not isinstance(entries, list | tuple):
        return 0, None
    total, reason = 0, None
    for entry in entries:
        if not isinstance(entry, Mapping):
            continue
        count = entry.get("count")
        if isinstance(count, int) and count > 0:
            total += count
        if reason is None:
            reason = _text(entry.get("reason"), 64)
    return total, reason


def _letter_id(message: AbstractIncomingMessage, headers: Mapping[str, object]) -> str:
    """The dead letter's own id: the one its consumer gave it, else one derived from it.

    A letter dead-lettered by the broker itself (``expired``, ``maxlen``) has no consumer-given
    id; its id is derived from what the broker wrote about its death (queue, reason, time and
    count) and its content, so copies of one message that died apart get ids apart. Copies
    identical in every byte and in their death share an id and are interchangeable.
    """
    given = headers.get(LETTER_ID_HEADER)
    if isinstance(given, bytes | bytearray):
        given = bytes(given).decode("ascii", errors="replace")
    if isinstance(given, str) and _LETTER_ID.fullmatch(given):
        return given
    digest = hashlib.sha256()
    for part in (
        str(message.message_id),
        hashlib.sha256(message.body).hexdigest(),
        repr(headers.get("x-death")),
        repr(headers.get("x-first-death-reason")),
        repr(headers.get("x-first-death-queue")),
    ):
        digest.update(part.encode("utf-8", errors="replace") + b"\x1f")
    return digest.hexdigest()[:32]


def unverified_claims(token: str | None) -> Mapping[str, Any]:
    """The payload of a compact JWS, decoded WITHOUT checking its signature (for display only).

    Empty when the token is absent or not a well-formed JWS with a JSON object payload.
    """
    if token is None or len(token) > _MAX_TOKEN_CHARS:
        return {}
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    segment = parts[1]
    try:
        raw = binascii.a2b_base64(
            segment.translate(str.maketrans("-_", "+/")) + "=" * (-len(segment) % 4)
        )
        payload = json.loads(raw)
    except (binascii.Error, ValueError, RecursionError):
        return {}
    return payload if isinstance(payload, dict) else {}


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One message in a DLQ: what the broker and the rejecting service said about it.

    ``id`` is the letter's own (a message and its copies each have one); ``message_id`` is the
    AMQP one, which an authentic envelope's ``jti`` equals. ``reason`` is the rejecting
    service's ``x-sealflow-reject-reason``, else the broker's own (``expired``, ``maxlen``,
    ``rejected``), else ``unknown``. ``job`` is the AMQP correlation id. Nothing here is
    verified: the envelope is in ``headers`` for that.
    """

    id: str
    message_id: str
    queue: str
    type: str | None
    reason: str
    detail: str | None
    rejected_by: str | None
    rejected_at: str | None
    job: str | None
    size: int
    deaths: int
    deliveries: int
    attempt: int
    body: bytes = field(repr=False)
    headers: Mapping[str, object] = field(repr=False)

    @property
    def never_replayable(self) -> str | None:
        """Why no replay may ever re-seal this letter whatever its envelope, or ``None``."""
        return _COPY_REFUSAL if self.reason == "replay" else None

    @property
    def envelope(self) -> str | None:
        """The envelope token of the original message, when it carried one."""
        token = self.headers.get(ENVELOPE_HEADER)
        if isinstance(token, bytes | bytearray):
            token = bytes(token).decode("ascii", errors="replace")
        return token if isinstance(token, str) else None

    @classmethod
    def from_message(cls, message: AbstractIncomingMessage, queue: str) -> DeadLetter:
        """Describe a message got from the DLQ of ``queue`` (a base name, e.g. ``worker.jobs``)."""
        headers: Mapping[str, object] = dict(message.headers or {})
        deaths, broker_reason = _deaths(headers)
        attempt = headers.get(ATTEMPT_HEADER, 1)
        deliveries = headers.get("x-delivery-count", 0)
        return cls(
            id=_letter_id(message, headers),
            message_id=_text(message.message_id, _MAX_ID_CHARS) or "",
            queue=queue,
            type=_text(message.type, 64),
            reason=_text(headers.get(REJECT_REASON_HEADER), 64) or broker_reason or "unknown",
            detail=_text(headers.get("x-sealflow-reject-detail")),
            rejected_by=_text(headers.get("x-sealflow-rejected-by"), 64),
            rejected_at=_text(headers.get("x-sealflow-rejected-at"), 64),
            job=_text(message.correlation_id, 64),
            size=len(message.body),
            deaths=deaths,
            deliveries=deliveries if isinstance(deliveries, int) else 0,
            attempt=attempt if isinstance(attempt, int) else 1,
            body=message.body,
            headers=headers,
        )


@dataclass(frozen=True, slots=True)
class DeadLetterPage:
    """One listing: the dead letters seen, and whether more were left past the bounds."""

    letters: list[DeadLetter]
    more: bool


@dataclass(slots=True)
class TakenDeadLetter:
    """A dead letter held unacked: :meth:`ack` removes it; otherwise it goes back to its DLQ."""

    letter: DeadLetter
    _message: AbstractIncomingMessage = field(repr=False)
    acked: bool = False

    async def ack(self) -> None:
        """Remove the dead letter from its DLQ (after its replacement is safely published)."""
        try:
            await self._message.ack()
        except (AMQPError, ConnectionError, RuntimeError) as exc:
            raise BrokerUnavailable(
                f"could not acknowledge dead letter {self.letter.id}: {exc}"
            ) from exc
        self.acked = True


class DeadLetterQueues:
    """The DLQs of one namespace, read over one channel of ``connection``; :meth:`close` it."""

    def __init__(
        self,
        connection: AbstractConnection,
        topology: Topology,
        *,
        queues: Sequence[str] = tuple(QUEUE_BINDINGS),
        scan_limit: int = 1000,
        max_held_bytes: int = 64 * 1024 * 1024,
        timeout: float = 10.0,
    ) -> None:
        unknown = set(queues) - set(QUEUE_BINDINGS)
        if unknown:
            raise ValueError(f"not queues of the topology: {sorted(unknown)}")
        if scan_limit < 1 or max_held_bytes < 1 or timeout <= 0:
            raise ValueError("scan_limit, max_held_bytes and timeout must be positive")
        self.connection = connection
        self.topology = topology
        self.queues = tuple(queues)
        self.scan_limit = scan_limit
        self.max_held_bytes = max_held_bytes
        self.timeout = timeout
        self._lock = asyncio.Lock()
        self._open_channel: AbstractChannel | None = None

    async def browse(
        self, *, limit: int = DEFAULT_LIST_LIMIT, queue: str | None = None
    ) -> DeadLetterPage:
        """Up to ``limit`` dead letters, DLQ by DLQ, oldest first; none is consumed.

        Also bounded by ``max_held_bytes`` of bodies: a listing stops early past it.
        """
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise ValueError(f"limit must be 1..{MAX_LIST_LIMIT}")
        bases = self._selected(queue)
        letters: list[DeadLetter] = []
        held_bytes, more = 0, False
        async with self._lock, self._channel() as channel:
            held: list[AbstractIncomingMessage] = []
            try:
                async with self._bounded("list dead letters"):
                    for base in bases:
                        dlq = await self._queue(channel, base)
                        while not more:
                            message = await dlq.get(no_ack=False, fail=False)
                            if message is None:
                                break
                            held.append(message)
                            if len(letters) >= limit or held_bytes >= self.max_held_bytes:
                                more = True  # one past the bound: there is more to see
                                break
                            held_bytes += len(message.body)
                            letters.append(DeadLetter.from_message(message, base))
                        if more:
                            break
            finally:
                await _requeue(held)
        return DeadLetterPage(letters=letters, more=more)

    @asynccontextmanager
    async def take(
        self, letter_id: str, *, queue: str | None = None
    ) -> AsyncIterator[TakenDeadLetter | None]:
        """Hold the dead letter with this id (:attr:`DeadLetter.id`), or yield None.

        At most ``scan_limit`` messages of each DLQ, and ``max_held_bytes`` of bodies in all,
        are looked at. Unless the caller acks it
        (:meth:`TakenDeadLetter.ack`), the letter returns to its DLQ on exit.
        """
        bases = self._selected(queue)
        async with self._lock, self._channel() as channel:
            held: list[AbstractIncomingMessage] = []
            found: TakenDeadLetter | None = None
            try:
                async with self._bounded("find a dead letter"):
                    found = await self._find(channel, bases, letter_id, held)
                    # The others go back at once: they are not held while the caller works.
                    await _requeue(held)
                yield found
            finally:
                await _requeue(held)
                if found is not None and not found.acked:
                    await _requeue([found._message])

    async def _find(
        self,
        channel: AbstractChannel,
        bases: tuple[str, ...],
        letter_id: str,
        held: list[AbstractIncomingMessage],
    ) -> TakenDeadLetter | None:
        held_bytes = 0
        for base in bases:
            dlq = await self._queue(channel, base)
            for _ in range(self.scan_limit):
                message = await dlq.get(no_ack=False, fail=False)
                if message is None:
                    break
                letter = DeadLetter.from_message(message, base)
                if letter.id == letter_id:
                    return TakenDeadLetter(letter, message)
                held.append(message)
                held_bytes += len(message.body)
                if held_bytes >= self.max_held_bytes:
                    return None
        return None

    def _selected(self, queue: str | None) -> tuple[str, ...]:
        if queue is None:
            return self.queues
        if queue not in self.queues:
            raise ValueError(f"unknown queue {queue!r}")
        return (queue,)

    async def _queue(self, channel: AbstractChannel, base: str) -> AbstractQueue:
        # Not re-declared: the DLQs exist once any service has declared the topology, and a
        # missing one would be created here with the wrong arguments.
        return await channel.get_queue(self.topology.queue(f"{base}.dlq"), ensure=False)

    @asynccontextmanager
    async def _bounded(self, what: str) -> AsyncIterator[None]:
        """Bound the broker work of one step in time; its failures become BrokerUnavailable."""
        try:
            async with asyncio.timeout(self.timeout):
                yield
        except TimeoutError as exc:
            raise BrokerUnavailable(f"{what}: no answer within {self.timeout} s") from exc
        except (AMQPError, ConnectionError, RuntimeError) as exc:
            raise BrokerUnavailable(f"{what}: {type(exc).__name__}: {exc}") from exc

    @asynccontextmanager
    async def _channel(self) -> AsyncIterator[AbstractChannel]:
        """The one channel of these operations, opened on first use and after a failure.

        One channel, used under the lock: a message nacked on it is seen by its next
        ``basic.get`` at once (another channel may briefly miss a returned message).
        """
        if self._open_channel is None or self._open_channel.is_closed:
            async with self._bounded("open a channel"):
                self._open_channel = await self.connection.channel()
        channel = self._open_channel
        try:
            yield channel
        except BaseException:
            # Closing the channel returns whatever it still holds to the DLQs.
            self._open_channel = None
            await _close(channel)
            raise

    async def close(self) -> None:
        """Close the channel (anything still held returns to its DLQ)."""
        async with self._lock:
            if self._open_channel is not None:
                channel, self._open_channel = self._open_channel, None
                await _close(channel)


async def _close(channel: AbstractChannel) -> None:
    try:
        await channel.close()
    except (AMQPError, ConnectionError, RuntimeError) as exc:
        _log.warning("deadletters.channel_close_failed", error=str(exc))


async def _requeue(messages: list[AbstractIncomingMessage]) -> None:
    """Return held messages to their queue, in order; a failure leaves them to channel close."""
    for message in messages:
        if message.processed:
            continue
        try:
            await message.nack(requeue=True)
        except (AMQPError, ConnectionError, RuntimeError) as exc:
            _log.warning("deadletters.requeue_failed", error=str(exc))
    messages.clear()
