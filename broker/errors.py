"""Errors of the broker layer other than envelope rejections (see ``envelope.EnvelopeError``)."""

from __future__ import annotations

from schemas.errors import SealflowError

__all__ = ["BrokerError", "BrokerUnavailable", "PermanentFailure", "PublishFailed", "RetryLater"]


class BrokerError(SealflowError):
    """Base of the broker layer's errors; ``reason`` is machine-readable."""

    reason = "broker_error"


class BrokerUnavailable(BrokerError):
    """RabbitMQ does not answer (not running, wrong URL, credentials refused)."""

    reason = "broker_unavailable"


class PublishFailed(BrokerError):
    """A publish was not confirmed: nacked, returned as unroutable, or the connection dropped."""

    reason = "publish_failed"


class RetryLater(BrokerError):
    """Raised by a handler for a transient failure: the message is retried with backoff."""

    reason = "retry_later"


class PermanentFailure(BrokerError):
    """Raised by a handler when the message can never succeed: it is dead-lettered at once."""

    reason = "permanent_failure"
