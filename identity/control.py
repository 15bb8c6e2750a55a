"""Revocations the identity broadcasts on ``sealflow.control`` (DESIGN §6), signed as itself.

Access tokens are checked by the gateway without asking the identity, so what the identity
revokes must reach the other services: an access token revoked at ``/revoke`` (its ``jti``),
the live access tokens of a sign-in revoked on reuse or sign-out (each ``jti``), and a user
disabled by ``sealflow users disable`` (the ``sub``, for as long as their tokens can live).

Handlers never wait on the broker: :class:`RevocationOutbox` queues each revocation and one
task hands it to a :class:`RevocationSink`, retrying while the broker is away, until it is
published or has lapsed. Each revocation is also appended to the machine's revocation
journal, or with ``SEALFLOW_DATABASE_URL`` added to PostgreSQL's revocations, so daemons
started later (here, or on any host sharing the database) enforce it too.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final, Protocol

import structlog
from pydantic import ValidationError

from broker import (
    BrokerSettings,
    Policy,
    Publisher,
    PublishFailed,
    RevocationList,
    Sealer,
    Topology,
    connect,
    open_channel,
    publish_control,
)
from identity.outbox import Outbox
from keys import KeyRing
from schemas import Revocation, RevocationKind
from store import PgRevocations, backend_of

if TYPE_CHECKING:
    from broker import ServiceRuntime

__all__ = [
    "CONTROL_SENDER",
    "REVOCATION_LEEWAY",
    "LogRevocationSink",
    "RevocationOutbox",
    "RevocationSink",
    "RuntimeRevocationSink",
    "broadcast_revocations",
    "new_revocation",
]

_log = structlog.get_logger("sealflow.identity.control")

CONTROL_SENDER: Final = "identity"
"""The ``sub`` of the identity's control envelopes: the service acting as itself."""
REVOCATION_LEEWAY: Final = 60.0
"""Seconds a token revocation outlives the token, covering the receivers' clock leeway."""
_MAX_RETRY_DELAY: Final = 30.0


def new_revocation(
    kind: RevocationKind, value: str, reason: str, *, until: float | None = None
) -> Revocation:
    """A revocation of ``value`` issued now, lapsing at ``until`` (epoch seconds) or never."""
    now = datetime.now(UTC)
    return Revocation(
        revocation_id=secrets.token_hex(16),
        kind=kind,
        value=value,
        reason=reason,
        issued_at=now,
        until=None if until is None else datetime.fromtimestamp(until, UTC),
    )


class RevocationSink(Protocol):
    """Where the identity's revocations go: the control exchange, or a log without a broker."""

    async def publish(self, revocation: Revocation) -> None:
        """Deliver ``revocation``; ``PublishFailed`` when it could not be delivered now."""


class LogRevocationSink:
    """Only logs: for running the provider without a broker (tests, tools)."""

    async def publish(self, revocation: Revocation) -> None:
        """Log the revocation as one structured line."""
        _log.warning("revocation.not_broadcast", **revocation.model_dump(mode="json"))


class RuntimeRevocationSink:
    """Journals and publishes through the daemon's runtime once the broker is connected."""

    def __init__(self, runtime: ServiceRuntime) -> None:
        self.runtime = runtime

    async def publish(self, revocation: Revocation) -> None:
        """Journal it (or add it to the shared store), then seal one copy per receiver and
        publish."""
        self.runtime.revocations.add(revocation)
        await self.runtime.revocations.offer()
        publisher = self.runtime.publisher
        if publisher is None:
            raise PublishFailed("not connected to the broker (yet); revocation not published")
        await publish_control(
            publisher, revocation, typ=Revocation.MESSAGE_TYPE, sub=CONTROL_SENDER
        )


class RevocationOutbox(Outbox[Revocation]):
    """Queues revocations for ``sink``; :meth:`start` the sender, :meth:`close` to drain."""

    def __init__(
        self,
        sink: RevocationSink,
        *,
        max_queued: int = 10_000,
        retry_delay: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name="identity-revocations", max_queued=max_queued)
        self.sink = sink
        self.retry_delay = retry_delay
        self._clock = clock

    def revoke(self, kind: RevocationKind, value: str, reason: str, *, until: float | None) -> None:
        """Queue one revocation (never blocks, never raises: what fails is logged)."""
        try:
            revocation = new_revocation(kind, value, reason, until=until)
        except ValidationError as error:
            _log.error("revocation.invalid", kind=kind, value=value[:255], error=str(error))
            return
        if not self._put(revocation):
            _log.error("revocation.queue_full", **revocation.model_dump(mode="json"))

    def _unsent(self, count: int) -> None:
        _log.error("revocation.unsent_at_shutdown", count=count)

    async def _deliver(self, revocation: Revocation) -> None:
        """Retry with back-off until published, or until the revocation has lapsed."""
        delay = self.retry_delay
        while True:
            try:
                await self.sink.publish(revocation)
            except PublishFailed as error:
                lapsed = (
                    revocation.until is not None and revocation.until.timestamp() <= self._clock()
                )
                _log.error(
                    "revocation.publish_failed",
                    error=error.detail,
                    retry_in=None if lapsed else delay,
                    **revocation.model_dump(mode="json"),
                )
                if lapsed:
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, _MAX_RETRY_DELAY)
                continue
            _log.info(
                "revocation.published",
                kind=revocation.kind,
                value=revocation.value,
                revocation_id=revocation.revocation_id,
            )
            return


async def broadcast_revocations(
    settings: BrokerSettings, revocations: list[Revocation]
) -> list[str]:
    """Journal (with a PostgreSQL ``database_url``, also store) and publish ``revocations``
    now, signed with the identity's key (operator CLI); the services each copy was sealed for.

    Needs the identity's key ring under ``SEALFLOW_KEYS_DIR/identity``: it runs on the
    identity's host. ``PublishFailed`` when the broker refuses or no service is listening.
    """
    ring = KeyRing.load(settings.keys_dir, CONTROL_SENDER)
    policy = Policy.load(settings.policy_file) if settings.policy_file else Policy.default()
    sealer = Sealer(ring.signing_key(), policy=policy, lifetime=settings.envelope_lifetime)
    shared = (
        await PgRevocations.open(settings.database_url)
        if settings.database_url and backend_of(settings.database_url) == "postgresql"
        else None
    )
    try:
        journal = RevocationList(journal=settings.data_dir / "revocations.jsonl", shared=shared)
        for revocation in revocations:
            journal.add(revocation)
        await journal.offer()
    finally:
        if shared is not None:
            await shared.close()
    connection = await connect(
        settings.amqp_url, timeout=settings.connect_timeout, name="sealflow-revoke"
    )
    try:
        channel = await open_channel(connection)
        topology = Topology(settings.namespace)
        await topology.declare(channel, queues=())
        publisher = Publisher(channel, topology, sealer)
        audiences: list[str] = []
        for revocation in revocations:
            sent = await publish_control(
                publisher, revocation, typ=Revocation.MESSAGE_TYPE, sub=CONTROL_SENDER
            )
            audiences.extend(sealed.aud for sealed in sent if sealed.aud not in audiences)
    finally:
        await connection.close()
    return audiences
