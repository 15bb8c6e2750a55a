"""A robust connection to RabbitMQ: reconnects and re-declares the topology after a restart."""

from __future__ import annotations

import asyncio

import aio_pika
import structlog
from aio_pika.abc import AbstractRobustChannel, AbstractRobustConnection
from aiormq.exceptions import AMQPConnectionError

from broker.errors import BrokerUnavailable

__all__ = ["CANCEL_TIMEOUT", "connect", "open_channel", "redact_url"]

# Seconds to wait for the broker to confirm a consumer cancel before stopping anyway.
CANCEL_TIMEOUT = 5.0

_log = structlog.get_logger("sealflow.broker")


def redact_url(url: str) -> str:
    """The AMQP URL without its password, for logs and error messages."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


async def connect(
    url: str, *, timeout: float = 10.0, name: str = "sealflow"
) -> AbstractRobustConnection:
    """Open a robust connection, or raise :class:`BrokerUnavailable` with how to fix it."""
    try:
        connection = await asyncio.wait_for(
            aio_pika.connect_robust(url, client_properties={"connection_name": name}),
            timeout=timeout,
        )
    except (TimeoutError, AMQPConnectionError, OSError) as exc:
        raise BrokerUnavailable(
            f"RabbitMQ at {redact_url(url)} does not answer ({type(exc).__name__}: {exc}). "
            "Start it with `rabbitmq-server -detached` (local service) or `docker compose up -d "
            "rabbitmq`, or point SEALFLOW_AMQP_URL at a running broker."
        ) from exc
    connection.reconnect_callbacks.add(_on_reconnect)
    return connection


def _on_reconnect(connection: object) -> None:
    _log.warning("broker.reconnected")


async def open_channel(
    connection: AbstractRobustConnection, *, prefetch: int | None = None
) -> AbstractRobustChannel:
    """A channel with publisher confirms, returned-message errors and the given prefetch."""
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    if prefetch is not None:
        await channel.set_qos(prefetch_count=prefetch)
    return channel
