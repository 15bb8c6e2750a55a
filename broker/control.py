"""Signed control messages on ``sealflow.control``: revocations and key-set changes (DESIGN §6).

The exchange is a fanout, and an envelope names one audience, so a sender seals one copy per
receiving service that the policy allows, each with its own ``aud``. The copy also carries
the audience in the cleartext header ``x-sealflow-audience``, so each daemon skips copies
addressed to others without opening them. A forged header can only make a daemon skip a
message; every copy a daemon keeps is opened and checked in full.

Every replica of a service receives the same copy (same ``jti``) through its own queue, so
control messages are spent in this process only, never in the replicas' shared spent ids.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from typing import Protocol

import structlog
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue
from aio_pika.exceptions import AMQPError

from broker.auditing import AuditSink, make_audit_event
from broker.connection import CANCEL_TIMEOUT, connect, open_channel
from broker.envelope import EnvelopeError, Opener, Sealed, Sealer
from broker.errors import PublishFailed
from broker.policy import Policy
from broker.publisher import Publisher
from broker.revocation import RevocationList
from broker.settings import BrokerSettings
from broker.topology import Topology
from keys import KeyMaterialError, SigningKey, TrustBundle
from schemas import MAX_KIDS, KeySetChanged, Revocation, Service, WireModel

__all__ = ["AUDIENCE_HEADER", "ControlSubscriber", "broadcast_bundle", "publish_control"]

AUDIENCE_HEADER = "x-sealflow-audience"
_log = structlog.get_logger("sealflow.control")


class _TrustHolder(Protocol):
    """Where a daemon keeps its trust bundle (a :class:`keys.TrustStoreFile`)."""

    def accept(self, token: str, *, origin: str = "control") -> bool: ...


async def publish_control(
    publisher: Publisher, message: WireModel, *, typ: str, sub: str
) -> list[Sealed]:
    """Seal ``message`` once for every receiver the policy allows and publish each copy."""
    sealer = publisher.sealer
    receivers = sealer.policy.receivers_of(sealer.service, typ)
    if not receivers:
        raise PublishFailed(f"policy lets {sealer.service} send {typ} to no one")
    sent = []
    for receiver in receivers:
        sealed = sealer.seal(message, typ=typ, aud=receiver, sub=sub)
        amqp = publisher.message_for(sealed)
        amqp.headers[AUDIENCE_HEADER] = receiver
        await publisher.publish_raw(
            amqp, routing_key=typ, exchange=publisher.topology.exchange("control")
        )
        sent.append(sealed)
    return sent


async def broadcast_bundle(
    settings: BrokerSettings, relay: SigningKey, bundle: TrustBundle, *, service: Service
) -> int:
    """Publish ``bundle`` on ``sealflow.control`` to every daemon; returns the copies sent.

    ``relay`` is the key of a service whose ring is on this host: the envelope only says who
    relayed the bundle; receivers trust the bundle because the root signed it. ``service``
    names whose keys changed (for logs).
    """
    connection = await connect(
        settings.amqp_url, timeout=settings.connect_timeout, name="sealflow-keys"
    )
    try:
        channel = await open_channel(connection)
        topology = Topology(settings.namespace)
        await topology.declare(channel)
        policy = (
            Policy.load(settings.policy_file)
            if settings.policy_file is not None
            else Policy.default()
        )
        sealer = Sealer(relay, policy=policy, lifetime=settings.envelope_lifetime)
        kids = [key.kid for key in bundle.store.verification_keys() if key.service == service]
        message = KeySetChanged(
            service=service,
            kids=kids[:MAX_KIDS],
            changed_at=datetime.fromtimestamp(bundle.issued_at, UTC),
            version=bundle.version,
            bundle=bundle.token,
        )
        sent = await publish_control(
            Publisher(channel, topology, sealer),
            message,
            typ=KeySetChanged.MESSAGE_TYPE,
            sub=relay.service,
        )
    finally:
        await connection.close()
    return len(sent)


class ControlSubscriber:
    """One daemon's subscription to the control fanout: applies revocations, reloads keys."""

    def __init__(
        self,
        *,
        channel: AbstractChannel,
        topology: Topology,
        opener: Opener,
        revocations: RevocationList,
        trust: _TrustHolder,
        audit: AuditSink,
    ) -> None:
        self.channel = channel
        self.topology = topology
        self.opener = opener
        self.service = opener.service
        self.revocations = revocations
        self.trust = trust
        self.audit = audit
        self._queue: AbstractQueue | None = None
        self._tag: str | None = None

    async def start(self) -> None:
        """Declare this process's exclusive queue on the control fanout and consume it."""
        name = self.topology.name(f"control.{self.service}.{secrets.token_hex(6)}")
        self._queue = await self.channel.declare_queue(
            name, exclusive=True, auto_delete=True, durable=False
        )
        await self._queue.bind(self.topology.exchange("control"), routing_key="")
        self._tag = await self._queue.consume(self._on_message)

    async def stop(self) -> None:
        """Stop consuming (the exclusive queue goes with the connection)."""
        if self._queue is not None and self._tag is not None:
            try:
                if not self._queue.channel.is_closed:
                    await self._queue.cancel(self._tag, timeout=CANCEL_TIMEOUT)
            except (AMQPError, ConnectionError, RuntimeError, TimeoutError) as exc:
                _log.warning("control.cancel_failed", error=str(exc))
            self._tag = None

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        if (message.headers or {}).get(AUDIENCE_HEADER) != self.service:
            await message.ack()
            return
        try:
            opened = self.opener.open(
                message.body,
                message.headers,
                message_id=message.message_id,
                message_type=message.type,
                redelivered=bool(message.redelivered),
            )
        except EnvelopeError as error:
            _log.warning("control.rejected", reason=str(error.reason), detail=error.detail)
            await self._emit("control.rejected", "rejected", str(error.reason), error.detail)
            await message.ack()
            return
        content = opened.message
        if isinstance(content, Revocation):
            self.revocations.add(content)
            _log.warning("revocation.applied", kind=content.kind, value=content.value)
            await self._emit(
                "revocation.applied",
                "success",
                None,
                f"{content.kind} {content.value} revoked: {content.reason}",
                jti=opened.claims.jti,
            )
            await self.revocations.offer()
        elif isinstance(content, KeySetChanged):
            await self._take_bundle(content, opened.claims.jti)
        self.opener.complete(opened.spent_id)
        await message.ack()

    async def _take_bundle(self, content: KeySetChanged, jti: str) -> None:
        """Use the bundle if the root signed it and it is newer; audit a refusal."""
        try:
            applied = self.trust.accept(content.bundle, origin="control")
        except KeyMaterialError as error:
            if error.reason == "bundle_rollback":
                # Older than the bundle held: nothing changes. Two rotations sent at once
                # arrive in either order, so this is routine, not an attack to alarm on.
                await self._emit(
                    "trust.bundle_stale", "success", error.reason, error.detail, jti=jti
                )
                return
            _log.warning("trust_bundle.rejected", reason=error.reason, detail=error.detail)
            await self._emit(
                "trust.bundle_rejected", "rejected", error.reason, error.detail, jti=jti
            )
            return
        if applied:
            await self._emit(
                "trust.bundle_applied",
                "success",
                None,
                f"trust bundle {content.version} ({content.service} keys changed)",
                jti=jti,
            )

    async def _emit(
        self, type_: str, outcome: str, reason: str | None, detail: str, *, jti: str | None = None
    ) -> None:
        try:
            await self.audit.emit(
                make_audit_event(
                    source=self.service,
                    type=type_,
                    action="control",
                    outcome=outcome,
                    actor=self.service,
                    reason=reason,
                    jti=jti,
                    detail=f"{detail} (at {time.time():.3f})",
                )
            )
        except PublishFailed as exc:
            _log.error("audit.emit_failed", error=exc.detail)
