"""Signed message envelopes: ``seal`` a message on publish, ``open`` it on consume (DESIGN §4).

An envelope is a compact JWS carried in the AMQP header ``x-sealflow-envelope``; it binds the
sender, the user it acts for, the receiver, the permission, the message type, the exact body
bytes and a single-use id. Its JWS algorithm objects come from ``keys.jose``, the one module
that imports PyJWT.

It uses PyJWT's algorithm objects (sign/verify, raw↔DER signature conversion) directly
instead of ``jwt.encode``/``jwt.decode``: the JOSE header of a
signing key never changes and is encoded once, and ``open`` parses each segment exactly once,
in an order that never trusts a field before the check that vouches for it.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, Generic, Protocol, TypeVar

from pydantic import ValidationError
from pydantic_core import to_json

from broker.policy import Policy
from broker.spent_ids import SpentIds, SpentIdsFull, SpentState
from keys import SigningKey, VerificationKey
from keys.jose import JWS_ALGORITHMS
from schemas import (
    EnvelopeClaims,
    RetryTicket,
    SchemaError,
    SealflowError,
    WireMessage,
    WireModel,
    model_for,
)

__all__ = [
    "ENVELOPE_HEADER",
    "ENVELOPE_TYP",
    "RETRY_HEADER",
    "RETRY_TYP",
    "EnvelopeError",
    "Opened",
    "Opener",
    "Reason",
    "Revocations",
    "Sealed",
    "Sealer",
    "TrustSource",
    "body_digest",
    "extend_actor",
    "message_type_of",
]

ENVELOPE_HEADER: Final = "x-sealflow-envelope"
ENVELOPE_TYP: Final = "sealflow-envelope+jwt"
RETRY_HEADER: Final = "x-sealflow-retry"
"""Header of a retry ticket (:class:`schemas.RetryTicket`), beside the original envelope."""
RETRY_TYP: Final = "sealflow-retry+jwt"
"""JOSE ``typ`` of a retry ticket: it can never pass as an envelope, nor the reverse."""
_KNOWN_TYPS: Final = frozenset({ENVELOPE_TYP, RETRY_TYP})
_FORBIDDEN_HEADER_PARAMS: Final = frozenset({"jku", "x5u", "jwk", "x5c", "x5t", "x5t#S256", "crit"})
_ALLOWED_HEADER_PARAMS: Final = frozenset({"alg", "kid", "typ"})
_B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# Characters allowed last in a segment whose length is 2 or 3 mod 4: their unused low bits are 0.
_CANONICAL_LAST = {
    2: frozenset(c for i, c in enumerate(_B64URL) if i & 0b1111 == 0),
    3: frozenset(c for i, c in enumerate(_B64URL) if i & 0b11 == 0),
}
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_PADDING = (b"", b"", b"==", b"=")
_HEADER_CACHE_SIZE: Final = 256

_ALGORITHMS: Final = JWS_ALGORITHMS


class Reason(StrEnum):
    """Why an envelope was rejected: the code that is dead-lettered and audited."""

    MISSING_HEADER = "missing_header"
    MALFORMED_HEADER = "malformed_header"
    HEADER_TOO_LARGE = "header_too_large"
    BODY_TOO_LARGE = "body_too_large"
    FORBIDDEN_HEADER_PARAM = "forbidden_header_param"
    ALG_NOT_ALLOWED = "alg_not_allowed"
    WRONG_TYP = "wrong_typ"
    MISSING_KID = "missing_kid"
    UNKNOWN_KID = "unknown_kid"
    KEY_RETIRED = "key_retired"
    ALG_KEY_MISMATCH = "alg_key_mismatch"
    BAD_SIGNATURE = "bad_signature"
    MALFORMED_CLAIMS = "malformed_claims"
    KID_ISSUER_MISMATCH = "kid_issuer_mismatch"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    ISSUED_IN_FUTURE = "issued_in_future"
    LIFETIME_TOO_LONG = "lifetime_too_long"
    WRONG_AUDIENCE = "wrong_audience"
    POLICY_DENIED = "policy_denied"
    SCOPE_MISSING = "scope_missing"
    JTI_MISMATCH = "jti_mismatch"
    TYPE_MISMATCH = "type_mismatch"
    DIGEST_MISMATCH = "digest_mismatch"
    REVOKED = "revoked"
    REPLAY = "replay"
    RETRY_MISMATCH = "retry_mismatch"
    SCHEMA_INVALID = "schema_invalid"
    SPENT_IDS_FULL = "spent_ids_full"
    TRACE_MISMATCH = "trace_mismatch"


class EnvelopeError(SealflowError):
    """An envelope failed a check; ``reason`` is machine-readable, ``detail`` is for people.

    ``claims`` is set only when the signature had already been verified, so that what is
    audited about a rejected message never repeats a forger's words as fact.
    """

    reason: Reason

    def __init__(
        self, reason: Reason, detail: str, *, claims: EnvelopeClaims | None = None
    ) -> None:
        super().__init__(detail, reason=reason)
        self.claims = claims

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"

    @property
    def transient(self) -> bool:
        """True when the same message may succeed later (it is requeued, not dead-lettered)."""
        return self.reason is Reason.SPENT_IDS_FULL


class TrustSource(Protocol):
    """Where ``open`` finds public keys: a trust store that can reload itself."""

    def lookup(self, kid: str, now: float | None = None) -> VerificationKey | None: ...

    def refresh(self, *, force: bool = False) -> bool: ...


class Revocations(Protocol):
    """Revoked ``kid``s, ``jti``s and subjects, fed by ``sealflow.control`` (DESIGN §6)."""

    def revoked(self, *, kid: str, jti: str, sub: str, now: float) -> str | None:
        """The kind of revocation that applies ("kid", "jti", "sub"), or ``None``."""
        ...


@dataclass(slots=True)
class Sealed:
    """A sealed message, ready for the publisher: body, envelope token and AMQP properties.

    Not frozen: a frozen dataclass pays ``object.__setattr__`` per field on the hot path;
    treat it as read-only all the same.
    """

    body: bytes
    token: str
    jti: str
    typ: str
    sub: str
    aud: str
    exp: int
    job: str | None
    trace: str | None

    def headers(self) -> dict[str, str]:
        """The AMQP headers that carry the envelope."""
        return {ENVELOPE_HEADER: self.token}

    def expiration(self, now: float | None = None) -> float:
        """Seconds the message has left; the AMQP ``expiration`` so stale messages dead-letter."""
        remaining = self.exp - (time.time() if now is None else now)
        return max(remaining, 0.001)


M = TypeVar("M", bound=WireModel)


@dataclass(frozen=True, slots=True)
class Opened(Generic[M]):
    """A message whose envelope passed every check: the verified claims and the parsed body.

    ``attempt`` is 1, or the count of a verified retry ticket; ``ticket`` is that ticket's id.
    """

    claims: EnvelopeClaims
    message: M
    body: bytes
    kid: str
    attempt: int = 1
    ticket: str | None = None

    @property
    def spent_id(self) -> str:
        """The id this delivery spent: the retry ticket's, else the envelope's ``jti``."""
        return self.ticket if self.ticket is not None else self.claims.jti


def body_digest(body: bytes) -> str:
    """The ``dig`` claim: ``sha-256=`` and the base64url SHA-256 of the exact body bytes."""
    return "sha-256=" + _b64(hashlib.sha256(body).digest())


def extend_actor(act: Mapping[str, Any] | None, actor: str) -> dict[str, Any]:
    """The RFC 8693 ``act`` claim for ``actor`` acting next, with the prior chain nested."""
    return {"sub": actor} if act is None else {"sub": actor, "act": dict(act)}


def message_type_of(message: WireModel, typ: str | None) -> str:
    """``typ``, or else the model's ``MESSAGE_TYPE`` (a model without one needs ``typ``)."""
    if typ is not None:
        return typ
    if not isinstance(message, WireMessage):
        raise TypeError(f"{type(message).__name__} has no MESSAGE_TYPE: pass typ")
    return message.MESSAGE_TYPE


def _b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).translate(_TO_URLSAFE).rstrip(b"=").decode()


def _compact_json(value: object) -> bytes:
    """Compact UTF-8 JSON (pydantic-core's Rust encoder: a quarter of the stdlib's cost)."""
    return to_json(value)


class Sealer:
    """Seals messages for one sending service with its active signing key."""

    def __init__(
        self,
        key: SigningKey,
        *,
        policy: Policy | None = None,
        lifetime: int = 300,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if lifetime <= 0:
            raise ValueError("envelope lifetime must be positive")
        self.lifetime = lifetime
        self.policy = policy if policy is not None else Policy.default()
        self._clock = clock
        self.use(key)

    @property
    def service(self) -> str:
        """The sending service: the ``iss`` of every envelope this sealer makes."""
        return self._key.service

    @property
    def kid(self) -> str:
        """The key id currently signing."""
        return self._key.kid

    def use(self, key: SigningKey) -> None:
        """Switch to another signing key (after a rotation); its JOSE header is encoded once."""
        if key.alg not in _ALGORITHMS:
            raise ValueError(f"algorithm {key.alg} is not allowed for envelopes")
        self._key = key
        self._scopes: dict[tuple[str, str], str] = {}
        self._algorithm = _ALGORITHMS[key.alg]
        self._header_segment = self._header_for(ENVELOPE_TYP)
        self._retry_header_segment = self._header_for(RETRY_TYP)

    def _header_for(self, typ: str) -> str:
        header = {"alg": self._key.alg, "kid": self._key.kid, "typ": typ}
        return _b64(_compact_json(header)) + "."

    def _sign(self, header_segment: str, claims: Mapping[str, Any]) -> str:
        signing_input = header_segment + _b64(_compact_json(claims))
        signature = self._algorithm.sign(signing_input.encode("ascii"), self._key.private_key)
        return signing_input + "." + _b64(signature)

    def seal(
        self,
        message: WireModel,
        *,
        typ: str | None = None,
        aud: str,
        sub: str,
        scope: str | None = None,
        job: str | None = None,
        act: Mapping[str, Any] | None = None,
        trace: str | None = None,
        lifetime: int | None = None,
    ) -> Sealed:
        """Serialise ``message`` and sign an envelope binding it to ``aud``, ``sub`` and ``typ``.

        ``typ`` defaults to the model's ``MESSAGE_TYPE``; ``scope`` to what the policy requires
        for this sender, receiver and type.
        """
        typ = message_type_of(message, typ)
        body = message.model_dump_json(exclude_none=True).encode("utf-8")
        return self.seal_body(
            body,
            typ=typ,
            aud=aud,
            sub=sub,
            scope=scope,
            job=job,
            act=act,
            trace=trace,
            lifetime=lifetime,
        )

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
        """Seal bytes that are already the JSON of a schema model (replay of a dead letter)."""
        now = int(self._clock())
        exp = now + (self.lifetime if lifetime is None else lifetime)
        jti = os.urandom(16).hex()
        if scope is None:
            scope = self._scopes.get((aud, typ))
            if scope is None:
                scope = self._scopes[(aud, typ)] = self.policy.scope_for(self.service, aud, typ)
        claims: dict[str, Any] = {
            "iss": self.service,
            "sub": sub,
            "aud": aud,
            "scope": scope,
            "iat": now,
            "nbf": now,
            "exp": exp,
            "jti": jti,
            "typ": typ,
            "dig": body_digest(body),
        }
        if job is not None:
            claims["job"] = job
        if act is not None:
            claims["act"] = act
        if trace is not None:
            claims["trace"] = trace
        return Sealed(
            body=body,
            token=self._sign(self._header_segment, claims),
            jti=jti,
            typ=typ,
            sub=sub,
            aud=aud,
            exp=exp,
            job=job,
            trace=trace,
        )

    def seal_retry(self, claims: EnvelopeClaims, attempt: int) -> str:
        """A retry ticket for the envelope ``claims``, which this service opened, for ``attempt``.

        It lives no longer than that envelope, and is addressed to this service alone.
        """
        now = min(int(self._clock()), claims.exp)
        ticket = {
            "iss": self.service,
            "aud": self.service,
            "iat": now,
            "nbf": now,
            "exp": claims.exp,
            "jti": os.urandom(16).hex(),
            "of": claims.jti,
            "typ": claims.typ,
            "dig": claims.dig,
            "attempt": attempt,
        }
        return self._sign(self._retry_header_segment, ticket)


@dataclass(frozen=True, slots=True)
class _Header:
    alg: str
    kid: str
    typ: str


def _decode_segment(segment: str, what: str) -> bytes:
    """Strict base64url: alphabet only, no padding, and canonical (no stray trailing bits)."""
    remainder = len(segment) % 4
    # '+', '/' and '=' belong to standard base64; strict mode rejects every other stray byte.
    if remainder == 1 or "+" in segment or "/" in segment or "=" in segment:
        raise EnvelopeError(Reason.MALFORMED_HEADER, f"{what} is not base64url")
    # Two encodings that differ only in unused trailing bits decode alike; accept just one.
    if remainder and segment[-1] not in _CANONICAL_LAST[remainder]:
        raise EnvelopeError(Reason.MALFORMED_HEADER, f"{what} is not canonical base64url")
    try:
        standard = segment.encode("ascii").translate(_TO_STANDARD)
        return binascii.a2b_base64(standard + _PADDING[remainder], strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise EnvelopeError(Reason.MALFORMED_HEADER, f"{what} is not base64url") from exc


def _parse_header(segment: str) -> _Header:
    raw = _decode_segment(segment, "JOSE header")
    try:
        header = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise EnvelopeError(Reason.MALFORMED_HEADER, "JOSE header is not JSON") from exc
    if not isinstance(header, dict):
        raise EnvelopeError(Reason.MALFORMED_HEADER, "JOSE header is not a JSON object")
    forbidden = _FORBIDDEN_HEADER_PARAMS.intersection(header)
    if forbidden:
        raise EnvelopeError(
            Reason.FORBIDDEN_HEADER_PARAM,
            f"JOSE header carries {', '.join(sorted(forbidden))}, which is never followed",
        )
    unknown = set(header) - _ALLOWED_HEADER_PARAMS
    if unknown:
        raise EnvelopeError(
            Reason.MALFORMED_HEADER, f"JOSE header has unexpected members {sorted(unknown)}"
        )
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in _ALGORITHMS:
        raise EnvelopeError(Reason.ALG_NOT_ALLOWED, f"alg {alg!r} is not in the allow-list")
    typ = header.get("typ")
    if not isinstance(typ, str) or typ not in _KNOWN_TYPS:
        raise EnvelopeError(Reason.WRONG_TYP, f"typ {typ!r} is not {ENVELOPE_TYP!r}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise EnvelopeError(Reason.MISSING_KID, "JOSE header has no kid")
    if len(kid) > 128:
        raise EnvelopeError(Reason.MALFORMED_HEADER, "kid is longer than 128 characters")
    return _Header(alg=alg, kid=kid, typ=typ)


class Opener:
    """Opens envelopes addressed to one receiving service; every check of DESIGN §4."""

    def __init__(
        self,
        service: str,
        trust: TrustSource,
        *,
        policy: Policy | None = None,
        spent: SpentIds | None = None,
        revocations: Revocations | None = None,
        leeway: int = 5,
        max_lifetime: int = 900,
        max_header_bytes: int = 4096,
        max_body_bytes: int = 16 * 1024 * 1024,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.service = service
        self.trust = trust
        self.policy = policy if policy is not None else Policy.default()
        self.spent = spent if spent is not None else SpentIds()
        self.revocations = revocations
        self.leeway = leeway
        self.max_lifetime = max_lifetime
        self.max_header_bytes = max_header_bytes
        self.max_body_bytes = max_body_bytes
        self._clock = clock
        self._headers: dict[str, _Header] = {}

    def open(
        self,
        body: bytes,
        headers: Mapping[str, object] | None,
        *,
        message_id: str | None,
        message_type: str | None,
        redelivered: bool = False,
    ) -> Opened[WireModel]:
        """Verify an AMQP message's envelope and body; raise :class:`EnvelopeError` if any fails.

        The id it carries — the envelope's ``jti``, or the ``jti`` of the retry ticket beside it
        — is spent on first sight: held as pending until :meth:`complete`, whatever the outcome
        of the handling. ``redelivered`` is the broker's flag, which a publisher cannot set: a
        redelivery of a message whose handling never completed is let through.
        """
        now = self._clock()
        claims, key = self._authenticate(
            body, headers, message_id=message_id, message_type=message_type, now=now
        )
        self._check_claims(claims, now)
        self._check_revoked(claims, key.kid, now)
        raw_ticket = headers.get(RETRY_HEADER) if headers is not None else None
        ticket = None if raw_ticket is None else self._open_ticket(raw_ticket, claims, now)
        spent_id = claims.jti if ticket is None else ticket.jti
        state = self.spent.state(spent_id, now)
        if state is SpentState.DONE or (state is SpentState.PENDING and not redelivered):
            raise EnvelopeError(Reason.REPLAY, f"jti {spent_id} was already seen", claims=claims)
        try:
            message = model_for(claims.typ).model_validate_json(body)
        except (ValidationError, SchemaError) as exc:
            detail = _first_error(exc) if isinstance(exc, ValidationError) else str(exc)
            raise EnvelopeError(Reason.SCHEMA_INVALID, detail, claims=claims) from exc
        try:
            self.spent.claim(spent_id, claims.exp + self.leeway, now)
        except SpentIdsFull as exc:
            raise EnvelopeError(Reason.SPENT_IDS_FULL, str(exc), claims=claims) from exc
        if ticket is None:
            return Opened(claims=claims, message=message, body=body, kid=key.kid)
        return Opened(
            claims=claims,
            message=message,
            body=body,
            kid=key.kid,
            attempt=ticket.attempt,
            ticket=ticket.jti,
        )

    def complete(self, spent_id: str) -> None:
        """This delivery is settled (handled, retried under a new ticket, or dead-lettered)."""
        self.spent.complete(spent_id)

    def revalidate(self, opened: Opened[Any]) -> None:
        """Raise ``revoked`` if a revocation arrived since ``opened`` passed :meth:`open`.

        For a message that waited (prefetched, or queued for a parse slot) before its handler
        started: the handler must not act on a credential revoked in the meantime.
        """
        self._check_revoked(opened.claims, opened.kid, self._clock())

    def verify_signature(
        self,
        body: bytes,
        headers: Mapping[str, object] | None,
        *,
        message_id: str | None,
        message_type: str | None,
    ) -> EnvelopeClaims:
        """The claims of an authentic envelope, whoever it was addressed to and however old.

        Checks what :meth:`open` checks about authenticity, by the same code — JOSE header, a
        trusted key of ``iss`` with a matching ``alg``, the signature, the claims' form,
        ``jti``/``typ`` against the AMQP properties, the body digest, revocations — and none
        of freshness, audience, policy or spent ids. For re-checking a dead letter before it is
        re-sealed; it neither reads nor marks the spent ids.
        """
        now = self._clock()
        claims, key = self._authenticate(
            body, headers, message_id=message_id, message_type=message_type, now=now
        )
        self._check_revoked(claims, key.kid, now)
        return claims

    def _authenticate(
        self,
        body: bytes,
        headers: Mapping[str, object] | None,
        *,
        message_id: str | None,
        message_type: str | None,
        now: float,
    ) -> tuple[EnvelopeClaims, VerificationKey]:
        """The one routine that says an envelope is authentic and is about this exact message."""
        token = self._token_text(headers.get(ENVELOPE_HEADER) if headers is not None else None)
        if len(body) > self.max_body_bytes:
            raise EnvelopeError(
                Reason.BODY_TOO_LARGE, f"body is {len(body)} bytes (limit {self.max_body_bytes})"
            )
        payload, key = self._signed_payload(token, typ=ENVELOPE_TYP, now=now)
        # The payload is authentic from here on; it is still validated before it is used.
        try:
            claims = EnvelopeClaims.model_validate_json(payload)
        except ValidationError as exc:
            raise EnvelopeError(Reason.MALFORMED_CLAIMS, _first_error(exc)) from exc
        if key.service != claims.iss:
            raise EnvelopeError(
                Reason.KID_ISSUER_MISMATCH,
                f"kid {key.kid} belongs to {key.service}, not to iss {claims.iss}",
                claims=claims,
            )
        if message_id != claims.jti:
            raise EnvelopeError(
                Reason.JTI_MISMATCH,
                "AMQP message_id differs from the envelope's jti",
                claims=claims,
            )
        if message_type != claims.typ:
            raise EnvelopeError(
                Reason.TYPE_MISMATCH,
                f"AMQP type {message_type!r} differs from the envelope's typ {claims.typ!r}",
                claims=claims,
            )
        if body_digest(body) != claims.dig:
            raise EnvelopeError(
                Reason.DIGEST_MISMATCH, "body does not match the envelope's digest", claims=claims
            )
        return claims, key

    def _token_text(self, token: object) -> str:
        """A header value as a bounded ASCII string, or the reason it is not one."""
        if token is None:
            raise EnvelopeError(Reason.MISSING_HEADER, f"no {ENVELOPE_HEADER} header")
        if isinstance(token, bytes | bytearray):
            if len(token) > self.max_header_bytes:
                raise EnvelopeError(Reason.HEADER_TOO_LARGE, f"envelope is {len(token)} bytes")
            try:
                token = bytes(token).decode("ascii")
            except UnicodeDecodeError as exc:
                raise EnvelopeError(Reason.MALFORMED_HEADER, "envelope is not ASCII") from exc
        if not isinstance(token, str):
            raise EnvelopeError(Reason.MALFORMED_HEADER, "envelope header is not a string")
        if not token.isascii():  # a compact JWS is ASCII; found by tests/fuzz
            raise EnvelopeError(Reason.MALFORMED_HEADER, "envelope is not ASCII")
        if len(token) > self.max_header_bytes:
            raise EnvelopeError(
                Reason.HEADER_TOO_LARGE,
                f"envelope is {len(token)} bytes (limit {self.max_header_bytes})",
            )
        return token

    def _signed_payload(self, token: str, *, typ: str, now: float) -> tuple[bytes, VerificationKey]:
        """The payload of a compact JWS of JOSE ``typ`` whose signature a trusted key verifies."""
        parts = token.split(".")
        if len(parts) != 3:
            raise EnvelopeError(Reason.MALFORMED_HEADER, "envelope is not a compact JWS")
        header_segment, payload_segment, signature_segment = parts

        header = self._headers.get(header_segment)
        if header is None:
            header = _parse_header(header_segment)
            if len(self._headers) >= _HEADER_CACHE_SIZE:
                self._headers.clear()
            self._headers[header_segment] = header
        if header.typ != typ:
            raise EnvelopeError(Reason.WRONG_TYP, f"typ {header.typ!r} is not {typ!r}")

        key = self._key_for(header.kid, now)
        if key.alg != header.alg:
            raise EnvelopeError(
                Reason.ALG_KEY_MISMATCH,
                f"alg {header.alg} does not match key {key.kid} ({key.alg})",
            )
        signature = _decode_segment(signature_segment, "signature")
        signing_input = token[: len(header_segment) + 1 + len(payload_segment)].encode("ascii")
        if not _ALGORITHMS[header.alg].verify(signing_input, key.key, signature):
            raise EnvelopeError(Reason.BAD_SIGNATURE, f"signature does not verify with {key.kid}")
        return _decode_segment(payload_segment, "claims"), key

    def _open_ticket(self, raw: object, claims: EnvelopeClaims, now: float) -> RetryTicket:
        """Verify a retry ticket: sealed by this service for itself, for this very envelope."""
        try:
            payload, key = self._signed_payload(self._token_text(raw), typ=RETRY_TYP, now=now)
            ticket = RetryTicket.model_validate_json(payload)
        except EnvelopeError as exc:
            raise EnvelopeError(exc.reason, f"retry ticket: {exc.detail}", claims=claims) from exc
        except ValidationError as exc:
            raise EnvelopeError(
                Reason.MALFORMED_CLAIMS, f"retry ticket: {_first_error(exc)}", claims=claims
            ) from exc
        if not key.service == ticket.iss == ticket.aud == self.service:
            raise EnvelopeError(
                Reason.RETRY_MISMATCH,
                f"a retry ticket counts only when {self.service} sealed it for itself",
                claims=claims,
            )
        if (ticket.of, ticket.typ, ticket.dig) != (claims.jti, claims.typ, claims.dig):
            raise EnvelopeError(
                Reason.RETRY_MISMATCH, "the retry ticket is for another envelope", claims=claims
            )
        if now > ticket.exp + self.leeway or ticket.exp > claims.exp:
            raise EnvelopeError(
                Reason.EXPIRED, f"retry ticket expired at {ticket.exp}", claims=claims
            )
        if now + self.leeway < ticket.nbf:
            raise EnvelopeError(
                Reason.NOT_YET_VALID, f"retry ticket not valid before {ticket.nbf}", claims=claims
            )
        return ticket

    def _check_revoked(self, claims: EnvelopeClaims, kid: str, now: float) -> None:
        if self.revocations is not None:
            kind = self.revocations.revoked(kid=kid, jti=claims.jti, sub=claims.sub, now=now)
            if kind is not None:
                raise EnvelopeError(Reason.REVOKED, f"{kind} is revoked", claims=claims)

    def _key_for(self, kid: str, now: float) -> VerificationKey:
        key = self.trust.lookup(kid, now)
        # An unknown kid may be a freshly rotated key: reload the trust store (rate-limited).
        if key is None and self.trust.refresh():
            key = self.trust.lookup(kid, now)
        if key is None:
            # A trust store that still lists the key (past its not_after) can say why.
            owner = getattr(self.trust, "service_of", None)
            service = owner(kid) if callable(owner) else None
            if isinstance(service, str):
                raise EnvelopeError(
                    Reason.KEY_RETIRED,
                    f"kid {kid!r} of {service} was retired and is no longer accepted",
                )
            raise EnvelopeError(Reason.UNKNOWN_KID, f"kid {kid!r} is not trusted")
        return key

    def _check_claims(self, claims: EnvelopeClaims, now: float) -> None:
        """Freshness, audience and the sender's policy: what makes an authentic envelope due."""
        leeway = self.leeway
        if now > claims.exp + leeway:
            raise EnvelopeError(Reason.EXPIRED, f"expired at {claims.exp}", claims=claims)
        if now + leeway < claims.nbf:
            raise EnvelopeError(
                Reason.NOT_YET_VALID, f"not valid before {claims.nbf}", claims=claims
            )
        if now + leeway < claims.iat:
            raise EnvelopeError(Reason.ISSUED_IN_FUTURE, f"issued at {claims.iat}", claims=claims)
        if claims.exp - claims.iat > self.max_lifetime:
            raise EnvelopeError(
                Reason.LIFETIME_TOO_LONG,
                f"lifetime {claims.exp - claims.iat} s exceeds {self.max_lifetime} s",
                claims=claims,
            )
        if claims.aud != self.service:
            raise EnvelopeError(
                Reason.WRONG_AUDIENCE, f"aud {claims.aud} is not {self.service}", claims=claims
            )
        required = self.policy.required_scopes(claims.iss, self.service, claims.typ)
        if required is None:
            raise EnvelopeError(
                Reason.POLICY_DENIED,
                f"{claims.iss} may not send {claims.typ} to {self.service}",
                claims=claims,
            )
        missing = required - claims.scopes
        if missing:
            raise EnvelopeError(
                Reason.SCOPE_MISSING, f"scope lacks {' '.join(sorted(missing))}", claims=claims
            )


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    if not errors:
        return "invalid"
    first = errors[0]
    location = ".".join(str(part) for part in first["loc"]) or "body"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{location}: {first['msg']}{more}"[:300]
