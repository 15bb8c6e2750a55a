"""Publishing sealed messages: persistent, mandatory, confirmed, and expiring with the envelope."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange
from aio_pika.exceptions import AMQPError, DeliveryError, PublishError

from broker.envelope import Opened, Sealed, Sealer, extend_actor, message_type_of
from broker.errors import PublishFailed
from broker.topology import ExchangeKey, Topology
from broker.tracing import PublishHop, publishing
from schemas import WireMessage, WireModel

__all__ = ["Publisher", "amqp_message", "exchange_for"]


def exchange_for(message_type: str) -> ExchangeKey:
    """The exchange a message type travels on (DESIGN §3)."""
    if message_type.startswith("audit."):
        return "audit"
    if message_type.startswith("control."):
        return "control"
    return "jobs"


def amqp_message(
    body: bytes,
    *,
    headers: Mapping[str, Any],
    message_id: str | None,
    type: str | None,
    correlation_id: str | None,
    app_id: str | None,
    timestamp: datetime | None = None,
    expiration: float | None = None,
    content_type: str | None = "application/json",
) -> aio_pika.Message:
    """The one place an AMQP message is built: persistent, with Sealflow's properties."""
    return aio_pika.Message(
        body=body,
        headers=dict(headers),
        content_type=content_type,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=message_id,
        type=type,
        correlation_id=correlation_id,
        app_id=app_id,
        timestamp=timestamp if timestamp is not None else datetime.now(UTC),
        expiration=expiration,
    )


class Publisher:
    """Seals and publishes messages for one service; a publish returns once the broker confirms.

    Every publish ends in :meth:`_deliver`, the one method that touches the channel; the
    in-memory :class:`~broker.recording.RecordingPublisher` replaces just that.
    """

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
        typ: str | None = None,
        aud: str,
        sub: str,
        job: str | None = None,
        act: Mapping[str, Any] | None = None,
        trace: str | None = None,
    ) -> Sealed:
        """Seal ``message`` for ``aud`` and publish it; raises :class:`PublishFailed`.

        ``typ`` defaults to the model's ``MESSAGE_TYPE``.
        """
        typ = message_type_of(message, typ)
        exchange = self.topology.exchange(exchange_for(typ))
        with publishing(self.sealer.service, exchange, typ, trace) as hop:
            sealed = self.sealer.seal(
                message, typ=typ, aud=aud, sub=sub, job=job, act=act, trace=hop.trace
            )
            await self._send(exchange, sealed, hop)
        return sealed

    async def reply(self, opened: Opened[Any], message: WireMessage, audience: str) -> Sealed:
        """Send ``message`` to ``audience`` as the next hop of ``opened``: for the same user, job
        and trace, with this service appended to the RFC 8693 actor chain."""
        claims = opened.claims
        return await self.send(
            message,
            aud=audience,
            sub=claims.sub,
            job=claims.job or getattr(message, "job_id", None),
            act=extend_actor(
                claims.act.model_dump(exclude_none=True) if claims.act else None,
                self.sealer.service,
            ),
            trace=claims.trace,
        )

    async def publish(self, sealed: Sealed) -> None:
        """Publish an already sealed message on the exchange of its type."""
        exchange = self.topology.exchange(exchange_for(sealed.typ))
        with publishing(self.sealer.service, exchange, sealed.typ, sealed.trace) as hop:
            await self._send(exchange, sealed, hop)

    async def _send(self, exchange: str, sealed: Sealed, hop: PublishHop) -> None:
        """Publish ``sealed`` inside its send span, with the span's ``traceparent`` only when
        that is the trace ``sealed`` signs (an envelope sealed earlier may sign another, or
        none: a receiver refuses a header its claim contradicts)."""
        hop.describe(message_id=sealed.jti, body_size=len(sealed.body), job=sealed.job)
        headers = hop.headers if sealed.trace == hop.trace else None
        await self._deliver(exchange, self.message_for(sealed, headers), sealed.typ)

    async def publish_raw(
        self, message: aio_pika.Message, *, routing_key: str, exchange: str = ""
    ) -> None:
        """Publish an already built AMQP message (retries and dead letters) with confirms."""
        await self._deliver(exchange, message, routing_key)

    def message_for(
        self, sealed: Sealed, trace_headers: Mapping[str, str] | None = None
    ) -> aio_pika.Message:
        """The AMQP message for ``sealed``: ids, type, persistence and the envelope's expiry,
        with ``trace_headers`` (``traceparent``) beside the envelope."""
        headers = sealed.headers()
        if trace_headers:
            headers.update(trace_headers)
        return amqp_message(
            sealed.body,
            headers=headers,
            message_id=sealed.jti,
            type=sealed.typ,
            correlation_id=sealed.job,
            app_id=self.sealer.service,
            expiration=sealed.expiration(),
        )

    async def _deliver(self, exchange: str, message: aio_pika.Message, routing_key: str) -> None:
        """Publish on ``exchange`` (``""``: the default exchange) and wait for the confirm."""
        target = self.channel.default_exchange if exchange == "" else self._exchanges.get(exchange)
        if target is None:
            target = await self.channel.get_exchange(exchange, ensure=False)
            self._exchanges[exchange] = target
        try:
            await target.publish(
                message, routing_key=routing_key, mandatory=True, timeout=self.confirm_timeout
            )
        except (DeliveryError, PublishError) as exc:
            raise PublishFailed(f"broker refused {routing_key}: {exc}") from exc
        except (TimeoutError, AMQPError, ConnectionError, RuntimeError) as exc:
            raise PublishFailed(
                f"publish of {routing_key} not confirmed: {type(exc).__name__}: {exc}"
            ) from exc
