"""RabbitMQ for Sealflow: topology, robust connection, confirmed publishing, the consumer loop,
retries and dead-lettering, and the signed envelopes. The only package that talks AMQP."""

from __future__ import annotations

from broker.auditing import AuditSink, BrokerAuditSink, derived_event_id, make_audit_event
from broker.binding import check_body_binding
from broker.connection import connect, open_channel, redact_url
from broker.consumer import Consumer, Delivery, Handler
from broker.control import AUDIENCE_HEADER, ControlSubscriber, broadcast_bundle, publish_control
from broker.deadletters import (
    DeadLetter,
    DeadLetterPage,
    DeadLetterQueues,
    TakenDeadLetter,
    unverified_claims,
)
from broker.envelope import (
    ENVELOPE_HEADER,
    ENVELOPE_TYP,
    RETRY_HEADER,
    RETRY_TYP,
    EnvelopeError,
    Opened,
    Opener,
    Reason,
    Revocations,
    Sealed,
    Sealer,
    TrustSource,
    body_digest,
    extend_actor,
)
from broker.errors import (
    BrokerError,
    BrokerUnavailable,
    PermanentFailure,
    PublishFailed,
    RetryLater,
)
from broker.logging import configure_logging
from broker.policy import Policy, PolicyError, PolicyRule
from broker.publisher import Publisher, exchange_for
from broker.recording import Published, RecordingPublisher
from broker.revocation import RevocationList, SharedRevocations
from broker.runtime import ServiceRuntime, run_daemon, stop_on_signals
from broker.settings import BrokerSettings
from broker.spent_ids import SharedSpentIds, SpentIds, SpentIdsFull, SpentState
from broker.spent_ids_journal import SpentIdsJournal
from broker.topology import (
    ATTEMPT_HEADER,
    LETTER_ID_HEADER,
    QUEUE_BINDINGS,
    REJECT_REASON_HEADER,
    Topology,
)

__all__ = [
    "ATTEMPT_HEADER",
    "AUDIENCE_HEADER",
    "ENVELOPE_HEADER",
    "ENVELOPE_TYP",
    "LETTER_ID_HEADER",
    "QUEUE_BINDINGS",
    "REJECT_REASON_HEADER",
    "RETRY_HEADER",
    "RETRY_TYP",
    "AuditSink",
    "BrokerAuditSink",
    "BrokerError",
    "BrokerSettings",
    "BrokerUnavailable",
    "Consumer",
    "ControlSubscriber",
    "DeadLetter",
    "DeadLetterPage",
    "DeadLetterQueues",
    "Delivery",
    "EnvelopeError",
    "Handler",
    "Opened",
    "Opener",
    "PermanentFailure",
    "Policy",
    "PolicyError",
    "PolicyRule",
    "PublishFailed",
    "Published",
    "Publisher",
    "Reason",
    "RecordingPublisher",
    "RetryLater",
    "RevocationList",
    "Revocations",
    "Sealed",
    "Sealer",
    "ServiceRuntime",
    "SharedRevocations",
    "SharedSpentIds",
    "SpentIds",
    "SpentIdsFull",
    "SpentIdsJournal",
    "SpentState",
    "TakenDeadLetter",
    "Topology",
    "TrustSource",
    "body_digest",
    "broadcast_bundle",
    "check_body_binding",
    "configure_logging",
    "connect",
    "derived_event_id",
    "exchange_for",
    "extend_actor",
    "make_audit_event",
    "open_channel",
    "publish_control",
    "redact_url",
    "run_daemon",
    "stop_on_signals",
    "unverified_claims",
]
