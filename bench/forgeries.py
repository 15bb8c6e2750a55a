"""Forged messages for the soak: each one is built to fail exactly one check of ``open``.

A forgery is published straight into a daemon's queue (the default exchange, as an attacker
with broker access would), so nothing but the receiver's ``open`` stands between it and the
handler. Every forgery has a fresh AMQP ``message_id`` (the replay's is the original's), so
the soak can match each dead letter and each ``envelope.rejected`` audit record to it.
"""

from __future__ import annotations

import binascii
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import aio_pika
from cryptography.hazmat.primitives.asymmetric import ec

from broker import ENVELOPE_HEADER, Publisher, Sealed, Sealer, make_audit_event
from keys import SigningKey
from schemas import JobSubmitted, ParseRequested

KINDS: Final = ("unknown_kid", "bad_signature", "tampered_body", "replay")
QUEUES: Final = ("worker.jobs", "parser.requests", "audit.events")
EXPECTED_REASON: Final = {
    "unknown_kid": "unknown_kid",
    "bad_signature": "bad_signature",
    "tampered_body": "digest_mismatch",
    "replay": "replay",
}


@dataclass(frozen=True, slots=True)
class Forgery:
    """One injected message and the rejection it must cause."""

    kind: str
    queue: str
    message_id: str
    expected_reason: str
    message: aio_pika.Message


def _job_submitted(owner: str = "mallory") -> JobSubmitted:
    job_id = secrets.token_hex(16)
    return JobSubmitted(
        job_id=job_id,
        owner=owner,
        filename="forged.txt",
        content_type="text/plain",
        size=12,
        blob_sha256=secrets.token_hex(32),
        submitted_at=datetime.now(UTC),
    )


def _flip_signature(token: str) -> str:
    """The same token with one bit of the signature flipped, still canonical base64url."""
    head, _, signature = token.rpartition(".")
    padded = signature + "=" * (-len(signature) % 4)
    raw = bytearray(binascii.a2b_base64(padded.replace("-", "+").replace("_", "/")))
    raw[len(raw) // 2] ^= 0x01
    encoded = binascii.b2a_base64(bytes(raw), newline=False).decode()
    return head + "." + encoded.replace("+", "-").replace("/", "_").rstrip("=")


class Forger:
    """Builds forgeries with the real services' keys (where the attack needs them) or a rogue one."""

    def __init__(self, publisher: Publisher, gateway: Sealer, worker: Sealer) -> None:
        self.publisher = publisher
        self.gateway = gateway
        self.worker = worker
        self.rogue = Sealer(
            SigningKey(
                service="gateway",
                kid="rogue-" + secrets.token_hex(8),
                alg="ES256",
                private_key=ec.generate_private_key(ec.SECP256R1()),
            )
        )

    def _genuine(self, queue: str) -> Sealed:
        """A message the queue's daemon would accept, sealed with the sender's real key."""
        if queue == "worker.jobs":
            job = _job_submitted()
            return self.gateway.seal(
                job, typ="job.submitted", aud="worker", sub=job.owner, job=job.job_id
            )
        if queue == "parser.requests":
            job_id = secrets.token_hex(16)
            request = ParseRequested(
                job_id=job_id,
                blob_sha256=secrets.token_hex(32),
                filename="forged.txt",
                content_type="text/plain",
                size=12,
                requested_at=datetime.now(UTC),
            )
            return self.worker.seal(
                request, typ="parse.requested", aud="parser", sub="mallory", job=job_id
            )
        event = make_audit_event(
            source="worker",
            type="job.started",
            action="process",
            outcome="success",
            actor="mallory",
        )
        return self.worker.seal(event, typ=f"audit.{event.type}", aud="audit", sub="mallory")

    def forge(self, kind: str, queue: str) -> Forgery:
        """A forgery of ``kind`` for ``queue`` (``unknown_kid`` goes to the worker)."""
        if kind == "unknown_kid":
            job = _job_submitted()
            sealed = self.rogue.seal(
                job, typ="job.submitted", aud="worker", sub=job.owner, job=job.job_id
            )
            message = self.publisher.message_for(sealed)
            queue = "worker.jobs"
        elif kind == "bad_signature":
            sealed = self._genuine(queue)
            message = self.publisher.message_for(sealed)
            message.headers[ENVELOPE_HEADER] = _flip_signature(sealed.token)
        elif kind == "tampered_body":
            sealed = self._genuine(queue)
            message = self.publisher.message_for(sealed)
            message.body = sealed.body.replace(b"mallory", b"malloRy").replace(
                b"forged.txt", b"forgeD.txt"
            )
            if message.body == sealed.body:
                raise AssertionError("the tampering changed nothing")
        else:
            raise ValueError(f"use replay_of() for {kind!r}")
        assert message.message_id is not None
        return Forgery(kind, queue, message.message_id, EXPECTED_REASON[kind], message)

    def replay_of(self, original: Sealed) -> Forgery:
        """A byte-for-byte copy of a message the worker already handled (same jti)."""
        message = self.publisher.message_for(original)
        assert message.message_id is not None
        return Forgery("replay", "worker.jobs", message.message_id, "replay", message)
