"""Unit-testing a daemon's handlers without a broker: genuine envelopes in, recorded ones out.

A message reaches a handler the way the consumer hands it over — sealed by its real sender and
opened by the receiving service's ``Opener`` — and what the handler publishes is recorded by a
:class:`broker.RecordingPublisher`, sealed, so a test can open it as its receiver would.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sealflow_testing import Env

from broker import (
    BrokerAuditSink,
    BrokerSettings,
    Delivery,
    Opened,
    Opener,
    Published,
    RecordingPublisher,
    ServiceRuntime,
    extend_actor,
    unverified_claims,
)
from keys import write_trust_store
from schemas import AuditEvent, WireMessage


@dataclass
class HandlerRig:
    """One service's handlers' surroundings: its recording publisher and audit sink."""

    env: Env
    service: str
    publisher: RecordingPublisher
    audit: BrokerAuditSink

    def deliver(
        self,
        message: WireMessage,
        *,
        sender: str,
        sub: str = "alice",
        act: tuple[str, ...] = (),
        attempt: int = 1,
    ) -> tuple[Opened[Any], Delivery]:
        """``message`` sealed by ``sender`` for this service and opened by it, as delivered."""
        chain: dict[str, Any] | None = None
        for actor in act:
            chain = extend_actor(chain, actor)
        sealed = self.env.sealer(sender).seal(
            message, aud=self.service, sub=sub, job=getattr(message, "job_id", None), act=chain
        )
        opened = self.env.opener(self.service).open(
            sealed.body, sealed.headers(), message_id=sealed.jti, message_type=sealed.typ
        )
        delivery = Delivery(
            queue="test", routing_key=sealed.typ, attempt=attempt, redelivered=False
        )
        return opened, delivery

    def opened(self, published: Published) -> Opened[Any]:
        """A recorded message opened by its receiver (every check of ``Opener.open``)."""
        audience = unverified_claims(published.envelope).get("aud")
        assert isinstance(audience, str)
        return published.open(Opener(audience, self.env.trust))

    def audit_events(self) -> list[AuditEvent]:
        """The audit events recorded so far, as the audit service would read them."""
        return [
            self.opened(item).message
            for item in self.publisher.published
            if (item.type or "").startswith("audit.")
        ]

    def sent(self, message_type: str) -> list[Opened[Any]]:
        """The recorded messages of one type, opened by their receivers."""
        return [self.opened(item) for item in self.publisher.of_type(message_type)]


def handler_rig(env: Env, service: str) -> HandlerRig:
    """A rig for ``service``'s handlers, sealing with its key from ``env``.

    ``env``'s clock is set to now: the rig's receivers check freshness against the real clock.
    """
    env.clock.now = time.time()
    publisher = RecordingPublisher(env.sealer(service))
    return HandlerRig(env, service, publisher, BrokerAuditSink(publisher))


def recording_runtime(env: Env, service: str, data_dir: Path) -> ServiceRuntime:
    """A :class:`ServiceRuntime` that is never started: its publisher and audit sink record.

    For handlers that take the runtime (the parser's) rather than a publisher and a sink.
    """
    env.clock.now = time.time()
    write_trust_store(env.keys_dir)
    runtime = ServiceRuntime(
        service, BrokerSettings(keys_dir=env.keys_dir, data_dir=data_dir, max_attempts=3)
    )
    publisher = RecordingPublisher(runtime.sealer)
    runtime.publisher = publisher
    runtime.audit = BrokerAuditSink(publisher)
    return runtime


def runtime_rig(env: Env, runtime: ServiceRuntime) -> HandlerRig:
    """The rig that reads what a :func:`recording_runtime` recorded."""
    assert isinstance(runtime.publisher, RecordingPublisher)
    assert isinstance(runtime.audit, BrokerAuditSink)
    return HandlerRig(env, runtime.service, runtime.publisher, runtime.audit)
