"""Publishing sealed messages: persistent, mandatory, confirmed, and expiring with the envelope."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange
from aio_pika.exceptions import AMQPError, DeliveryError, PublishError

from broker.envelope import Sealed, Sealer
from broker.errors import PublishFailed
from broker.topology import ExchangeKey, Topology
from schemas import WireModel

__all__ = ["Publisher", "exchange_for"]


def exchange_for(message_type: str) -> ExchangeKey:
    """The exchange a message type travels on (DESIGN §3)."""
    if message_type.startswith("audit."):
        return "audit"
    if message_type.startswith("control."):
        return "control"
    return "jobs"


class Publisher:
    """Seals and publishes messages for one service; a publish returns once the broker confirms."""

    def __init__(
        self,
        channel: AbstractChannel,
        topology: Topology,
        sealer: Sealer,
        *,
        confirm_timeout: float = 10.0,
    ) -> None:
        self.channel = channel
        self.topology = topology
        self.sealer = sealer
        self.confirm_timeout = confirm_timeout
        self._exchanges: dict[str, AbstractExchange] = {}

    async def send(
        self,
        message: WireModel,
        *,
        typ: str,
        aud: str,
        sub: str,
        job: str | None = None,
        act: Mapping[str, Any] | None = None,
        trace: str | None = None,
    ) -> Sealed:
        """Seal ``message`` for ``aud`` and publish it; raises :class:`PublishFailed`."""
        sealed = self.sealer.seal(message, typ=typ, aud=aud, sub=sub, job=job, act=act, trace=trace)
        await self.publish(sealed)
        return sealed

    async def publish(self, sealed: Sealed, *, attempt: int | None = None) -> None:
        """Publish an already sealed message on the exchange of its type."""
        exchange = await self._exchange(self.topology.exchange(exchange_for(sealed.typ)))
        await self._confirm(exchange, self.message_for(sealed, attempt=attempt), sealed.typ)

    async def publish_raw(
        self, message: aio_pika.Message, *, routing_key: str, exchange: str = ""
    ) -> None:
        """Publish an already built AMQP message (retries and dead letters) with confirms."""
        target = self.channel.default_exchange if exchange == "" else await self._exchange(exchange)
        await self._confirm(target, message, routing_key)

    def message_for(self, sealed: Sealed, *, attempt: int | None = None) -> aio_pika.Message:
        """The AMQP message for ``sealed``: ids, type, persistence and the envelope's expiry."""
        headers: dict[str, Any] = dict(sealed.headers())
        if attempt is not None:
            headers["x-sealflow-attempt"] = attempt
        return aio_pika.Message(
            body=sealed.body,
            headers=headers,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=sealed.jti,
            type=sealed.typ,
            correlation_id=sealed.job,
            app_id=self.sealer.service,
            timestamp=datetime.now(UTC),
            expiration=sealed.expiration(),
        )

    async def _exchange(self, name: str) -> AbstractExchange:
        exchange = self._exchanges.get(name)
        if exchange is None:
            exchange = await self.channel.get_exchange(name, ensure=False)
            self._exchanges[name] = exchange
        return exchange

    async def _confirm(
        self, exchange: AbstractExchange, message: aio_pika.Message, routing_key: str
    ) -> None:
        try:
            await exchange.publish(
                message, routing_key=routing_key, mandatory=True, timeout=self.confirm_timeout
            )
        except (DeliveryError, PublishError) as exc:
            raise PublishFailed(f"broker refused {routing_key}: {exc}") from exc
        except (TimeoutError, AMQPError, ConnectionError, RuntimeError) as exc:
            raise PublishFailed(
                f"publish of {routing_key} not confirmed: {type(exc).__name__}: {exc}"
            ) from exc
