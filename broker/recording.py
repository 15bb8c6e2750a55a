"""An in-memory :class:`~broker.Publisher` that records what would be sent, sealed, for unit tests.

Modelled on FastStream's ``TestBroker``: the real class with its transport swapped out. It
seals with a real :class:`~broker.Sealer` and builds the same AMQP messages, and only the last
step, :meth:`Publisher._deliver`, is replaced; so what a handler publishes here is exactly what
it would publish on the broker, and the receiving service's ``Opener`` can open it. It lives in
``broker/`` next to the class it stands in for, because it depends on that class's one
transport hook and must change with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aio_pika

from broker.envelope import ENVELOPE_HEADER, Opened, Opener, Sealer
from broker.errors import PublishFailed
from broker.publisher import Publisher
from broker.topology import Topology

__all__ = ["Published", "RecordingPublisher"]


@dataclass(frozen=True, slots=True)
class Published:
    """One message that would have been published: where to, and the AMQP message itself."""

    exchange: str
    routing_key: str
    message: aio_pika.Message

    @property
    def type(self) -> str | None:
        """The AMQP ``type``: the message type (``parse.requested``, ``audit.job.started``...)."""
        return self.message.type

    @property
    def envelope(self) -> str | None:
        """The envelope token in ``x-sealflow-envelope``."""
        token = self.message.headers.get(ENVELOPE_HEADER)
        return token if isinstance(token, str) else None

    def open(self, opener: Opener) -> Opened[Any]:
        """Open it as its receiver would (every check of ``Opener.open``)."""
        return opener.open(
            self.message.body,
            self.message.headers,
            message_id=self.message.message_id,
            message_type=self.message.type,
        )


class RecordingPublisher(Publisher):
    """A :class:`Publisher` without a broker: every publish is confirmed at once and recorded.

    Set ``fail_next`` to make that many publishes raise :class:`PublishFailed`, as an
    unconfirmed publish does. It has no ``channel``: nothing but ``_deliver`` may touch one.
    """

    def __init__(self, sealer: Sealer, topology: Topology | None = None) -> None:
        self.topology = topology if topology is not None else Topology()
        self.sealer = sealer
        self.confirm_timeout = 0.0
        self.published: list[Published] = []
        self.fail_next = 0

    def of_type(self, message_type: str) -> list[Published]:
        """The recorded messages of one type, oldest first."""
        return [item for item in self.published if item.type == message_type]

    @property
    def types(self) -> list[str | None]:
        """The type of every recorded message, oldest first."""
        return [item.type for item in self.published]

    async def _deliver(self, exchange: str, message: aio_pika.Message, routing_key: str) -> None:
        if self.fail_next > 0:
            self.fail_next -= 1
            raise PublishFailed(f"publish of {routing_key} not confirmed (recorded failure)")
        self.published.append(Published(exchange, routing_key, message))
