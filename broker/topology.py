"""The broker topology of DESIGN §3: exchanges, queues, bindings and dead-letter queues.

Every name takes the namespace prefix (``SEALFLOW_NAMESPACE``) so that test runs and tenants
can share one broker. Queues are quorum queues (durable, replicated where there is a cluster)
with at-least-once dead-lettering, so a dead letter is never dropped on the way to its DLQ.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue

__all__ = [
    "ATTEMPT_HEADER",
    "LETTER_ID_HEADER",
    "QUEUE_BINDINGS",
    "REJECT_REASON_HEADER",
    "DeclaredTopology",
    "Topology",
]

REJECT_REASON_HEADER: Final = "x-sealflow-reject-reason"
ATTEMPT_HEADER: Final = "x-sealflow-attempt"
"""Written on a dead letter for people to read: how many attempts it had. Never read back."""
LETTER_ID_HEADER: Final = "x-sealflow-letter-id"
"""A dead letter's own id, given when the consumer dead-letters it (see ``DeadLetter.id``)."""

ExchangeKey = Literal["jobs", "audit", "control", "dlx"]

_EXCHANGES: Final[Mapping[ExchangeKey, tuple[str, aio_pika.ExchangeType]]] = {
    "jobs": ("sealflow.jobs", aio_pika.ExchangeType.TOPIC),
    "audit": ("sealflow.audit", aio_pika.ExchangeType.TOPIC),
    "control": ("sealflow.control", aio_pika.ExchangeType.FANOUT),
    "dlx": ("sealflow.dlx", aio_pika.ExchangeType.TOPIC),
}

# queue -> (exchange, routing keys). Each routing key has exactly one queue, so the DLX can
# route a dead letter to its queue's DLQ by the same key.
QUEUE_BINDINGS: Final[Mapping[str, tuple[ExchangeKey, tuple[str, ...]]]] = {
    "worker.jobs": ("jobs", ("job.submitted", "parse.completed", "parse.failed")),
    "parser.requests": ("jobs", ("parse.requested",)),
    "gateway.events": ("jobs", ("job.progress", "job.completed", "job.failed")),
    "audit.events": ("audit", ("audit.#",)),
}

# Extra arguments of some queues. The audit log has one writer: with a single active
# consumer, a standby audit daemon stays idle until the active one goes, then takes over,
# so the chain is never split between two writers (DESIGN §8).
_QUEUE_ARGUMENTS: Final[Mapping[str, Mapping[str, bool]]] = {
    "audit.events": {"x-single-active-consumer": True},
}


@dataclass(frozen=True, slots=True)
class DeclaredTopology:
    """Handles to the declared exchanges and queues on one channel."""

    exchanges: Mapping[ExchangeKey, AbstractExchange]
    queues: Mapping[str, AbstractQueue]


@dataclass(frozen=True, slots=True)
class Topology:
    """Names under one namespace, and their declaration."""

    namespace: str = ""

    def name(self, base: str) -> str:
        """``base`` under this namespace."""
        return f"{self.namespace}.{base}" if self.namespace else base

    def exchange(self, key: ExchangeKey) -> str:
        """The full name of one of the four exchanges."""
        return self.name(_EXCHANGES[key][0])

    def queue(self, base: str) -> str:
        """The full name of a queue (``worker.jobs``) or its DLQ (``worker.jobs.dlq``)."""
        return self.name(base)

    def retry_queue(self, base: str) -> str:
        """Where a message waits out its retry delay before it returns to ``base``."""
        return self.name(f"{base}.retry")

    def all_queue_names(self) -> list[str]:
        """Every queue this topology declares, including DLQs and retry queues."""
        names: list[str] = []
        for base in QUEUE_BINDINGS:
            names += [self.queue(base), self.queue(f"{base}.dlq"), self.retry_queue(base)]
        return names

    async def declare(
        self, channel: AbstractChannel, *, queues: tuple[str, ...] | None = None
    ) -> DeclaredTopology:
        """Declare the exchanges, and the given queues (default: all) with DLQ and retry queue.

        Idempotent; a robust channel re-runs these declarations after a reconnect.
        """
        exchanges: dict[ExchangeKey, AbstractExchange] = {}
        for key, (_base, kind) in _EXCHANGES.items():
            exchanges[key] = await channel.declare_exchange(self.exchange(key), kind, durable=True)
        declared: dict[str, AbstractQueue] = {}
        for base in queues if queues is not None else tuple(QUEUE_BINDINGS):
            exchange_key, routing_keys = QUEUE_BINDINGS[base]
            queue = await channel.declare_queue(
                self.queue(base),
                durable=True,
                arguments={
                    "x-queue-type": "quorum",
                    "x-dead-letter-exchange": self.exchange("dlx"),
                    "x-dead-letter-strategy": "at-least-once",
                    "x-overflow": "reject-publish",
                    **_QUEUE_ARGUMENTS.get(base, {}),
                },
            )
            dlq = await channel.declare_queue(
                self.queue(f"{base}.dlq"), durable=True, arguments={"x-queue-type": "quorum"}
            )
            retry = await channel.declare_queue(
                self.retry_queue(base),
                durable=True,
                arguments={
                    "x-queue-type": "quorum",
                    # An expired retry goes straight back to its queue via the default exchange.
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": self.queue(base),
                    "x-dead-letter-strategy": "at-least-once",
                    "x-overflow": "reject-publish",
                },
            )
            for routing_key in routing_keys:
                await queue.bind(exchanges[exchange_key], routing_key)
                await dlq.bind(exchanges["dlx"], routing_key)
            declared[base] = queue
            declared[f"{base}.dlq"] = dlq
            declared[f"{base}.retry"] = retry
        return DeclaredTopology(exchanges=exchanges, queues=declared)

    async def delete(self, channel: AbstractChannel) -> None:
        """Delete every queue and exchange of this namespace (test clean-up; never un-prefixed)."""
        if not self.namespace:
            raise ValueError("refusing to delete the un-namespaced production topology")
        for name in self.all_queue_names():
            await channel.queue_delete(name)
        for key in _EXCHANGES:
            await channel.exchange_delete(self.exchange(key))
