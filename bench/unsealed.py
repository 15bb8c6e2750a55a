"""Bench only: the pipeline with envelopes switched off, to measure what sealing costs end to end.

``UnsealedSealer`` sends the same claims (the handlers need ``sub``, ``job``, ``act``,
``trace``) as plain unsigned base64url JSON in the same AMQP header; ``UnsealedOpener`` reads
them and validates the body against its schema, and does nothing else: no signature, no key
lookup, no digest, no freshness, audience, policy or scope check, no revocation list, no
spent ids. Everything else — consumer loop, confirms, retries, store, blob store, sandboxed
parser, audit log — is the production code.

    python bench/unsealed.py worker|parser|audit    # a daemon with the switch thrown

The switch is this file replacing two names in ``broker.runtime`` of its own process before the
daemon starts. It is not importable from the installed packages and no setting reaches it.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from collections.abc import Mapping
from typing import Any

from broker import (
    ENVELOPE_HEADER,
    RETRY_HEADER,
    EnvelopeError,
    Opened,
    Opener,
    Reason,
    Sealed,
    Sealer,
)
from schemas import EnvelopeClaims, RetryTicket, WireModel, model_for

_NO_DIGEST = "sha-256=" + "A" * 43


class UnsealedSealer(Sealer):
    """Builds the claims, signs nothing, digests nothing."""

    def seal_body(
        self,
        body: bytes,
        *,
        typ: str,
        aud: str,
        sub: str,
        scope: str | None = None,
        job: str | None = None,
        act: Mapping[str, Any] | None = None,
        trace: str | None = None,
        lifetime: int | None = None,
    ) -> Sealed:
        now = int(self._clock())
        exp = now + (self.lifetime if lifetime is None else lifetime)
        jti = os.urandom(16).hex()
        claims: dict[str, Any] = {
            "iss": self.service,
            "sub": sub,
            "aud": aud,
            "scope": scope or "unsealed",
            "iat": now,
            "nbf": now,
            "exp": exp,
            "jti": jti,
            "typ": typ,
            "dig": _NO_DIGEST,
        }
        if job is not None:
            claims["job"] = job
        if act is not None:
            claims["act"] = act
        if trace is not None:
            claims["trace"] = trace
        token = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode()
        return Sealed(
            body=body,
            token=token,
            jti=jti,
            typ=typ,
            sub=sub,
            aud=aud,
            exp=exp,
            job=job,
            trace=trace,
        )


class UnsealedOpener(Opener):
    """Reads the unsigned claims and the body's schema; checks nothing else."""

    def open(
        self,
        body: bytes,
        headers: Mapping[str, object] | None,
        *,
        message_id: str | None,
        message_type: str | None,
        redelivered: bool = False,
    ) -> Opened[WireModel]:
        token = (headers or {}).get(ENVELOPE_HEADER)
        if not isinstance(token, str):
            raise EnvelopeError(Reason.MISSING_HEADER, "no claims header")
        ticket = (headers or {}).get(RETRY_HEADER)
        try:
            claims = EnvelopeClaims.model_validate_json(base64.urlsafe_b64decode(token))
            message = model_for(claims.typ).model_validate_json(body)
            # The retry ticket's count, read unverified like everything else here.
            attempt = (
                RetryTicket.model_validate_json(_unpadded_b64(ticket.split(".")[1])).attempt
                if isinstance(ticket, str)
                else 1
            )
        except (ValueError, IndexError) as exc:
            raise EnvelopeError(Reason.SCHEMA_INVALID, str(exc)[:200]) from exc
        return Opened(claims=claims, message=message, body=body, kid="unsealed", attempt=attempt)

    def complete(self, spent_id: str) -> None:
        return None


def _unpadded_b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def main() -> None:
    service = sys.argv[1] if len(sys.argv) == 2 else ""
    import broker.runtime

    broker.runtime.Sealer = UnsealedSealer  # type: ignore[misc]
    broker.runtime.Opener = UnsealedOpener  # type: ignore[misc]
    modules = {"worker": "workers.daemon", "parser": "parser.daemon", "audit": "audit.daemon"}
    if service not in modules:
        raise SystemExit("usage: python bench/unsealed.py worker|parser|audit")
    import importlib

    from broker import run_daemon

    run_daemon(service, importlib.import_module(modules[service]).serve)


if __name__ == "__main__":
    main()
