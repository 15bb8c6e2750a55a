"""The claims of an envelope, the signed JWT that travels with every message (DESIGN §4).

``EnvelopeClaims`` is validated for every message a service receives, so it relies on
constraints pydantic-core checks in Rust; the only Python validators are one cheap
cross-field check and, when an ``act`` chain is present, its depth check.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Self

from pydantic import Field, model_validator

from schemas.base import WireModel
from schemas.identifiers import BodyDigest, JobId, Jti, MessageType, Scope, Subject, TraceId
from schemas.limits import MAX_ACTOR_DEPTH, MAX_EPOCH_SECONDS
from schemas.services import Service

__all__ = ["Actor", "EnvelopeClaims", "EpochSeconds", "RetryTicket"]

EpochSeconds = Annotated[int, Field(ge=0, le=MAX_EPOCH_SECONDS)]
"""A NumericDate: whole seconds since the Unix epoch."""


def _is_none(value: object) -> bool:
    return value is None


class Actor(WireModel):
    """An RFC 8693 actor chain: ``sub`` acts now, ``act`` is who acted before it.

    A chain deeper than ``MAX_ACTOR_DEPTH`` is rejected before its inner levels are parsed.
    A missing ``act`` is omitted from dumps.
    """

    sub: Subject
    act: Actor | None = Field(default=None, exclude_if=_is_none)

    @model_validator(mode="before")
    @classmethod
    def _bounded_depth(cls, data: Any) -> Any:
        depth = 0
        node: Any = data
        while node is not None:
            depth += 1
            if depth > MAX_ACTOR_DEPTH:
                raise ValueError(f"actor chain is deeper than {MAX_ACTOR_DEPTH}")
            if isinstance(node, Mapping):
                node = node.get("act")
            elif isinstance(node, Actor):
                node = node.act
            else:
                break
        return data


class EnvelopeClaims(WireModel):
    """The JWT claims of an envelope.

    ``job``, ``act`` and ``trace`` are optional; when ``None`` they are omitted from
    ``model_dump()``/``model_dump_json()`` (the same as ``exclude_none=True``), because a JWT
    leaves absent claims out rather than sending ``null``. Not a broker message itself, so it
    is not in ``MESSAGE_MODELS`` and has no ``schema_version``.
    """

    iss: Service
    """The sending service."""
    sub: Subject
    """The user or client on whose behalf the message is sent."""
    aud: Service
    """The one receiving service."""
    scope: Scope
    iat: EpochSeconds
    nbf: EpochSeconds
    exp: EpochSeconds
    jti: Jti
    """Unique id of this envelope; equals the AMQP ``message_id``."""
    typ: MessageType
    """The message type; equals the routing key and the AMQP ``type``."""
    dig: BodyDigest
    job: JobId | None = Field(default=None, exclude_if=_is_none)
    act: Actor | None = Field(default=None, exclude_if=_is_none)
    trace: TraceId | None = Field(default=None, exclude_if=_is_none)

    @model_validator(mode="after")
    def _times_ordered(self) -> Self:
        if self.nbf > self.exp or self.iat > self.exp:
            raise ValueError("nbf and iat must not be after exp")
        return self

    @property
    def scopes(self) -> frozenset[str]:
        """The scope tokens as a set."""
        return frozenset(self.scope.split(" "))


class RetryTicket(WireModel):
    """The claims of a retry ticket: a consuming service's own signed word that the envelope
    ``of``, which it already opened, comes back to it for handling attempt ``attempt``.

    It travels beside the original envelope when a handler failed transiently; it is single-use
    (its own ``jti``) and never outlives the envelope it names, so the attempt count is one that
    nobody outside the consumer can set.
    """

    iss: Service
    """The consuming service that sealed the ticket; also its ``aud``."""
    aud: Service
    iat: EpochSeconds
    nbf: EpochSeconds
    exp: EpochSeconds
    jti: Jti
    """Unique id of this ticket, spent on first sight like an envelope's."""
    of: Jti
    """The ``jti`` of the envelope it retries."""
    typ: MessageType
    dig: BodyDigest
    attempt: Annotated[int, Field(ge=2, le=1000)]

    @model_validator(mode="after")
    def _times_ordered(self) -> Self:
        if self.nbf > self.exp or self.iat > self.exp:
            raise ValueError("nbf and iat must not be after exp")
        return self
