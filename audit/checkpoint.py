"""Signed checkpoints: the audit key's signature over ``(seq, hash)`` of a record.

A checkpoint line is ``{"seq", "hash", "ts", "kid", "alg", "prev", "sig"}`` where ``sig`` is
the unpadded base64url signature over the canonical JSON of ``{seq, hash, ts, kid, alg, prev}``
and ``prev`` is the previous checkpoint's ``digest`` (64 zeros for the first), so checkpoints
form a chain of their own. A checkpoint pins the whole log up to ``seq``: rewriting it needs
the key; cutting it back to an earlier checkpoint is caught by the anchor (``audit.anchor``).
Lines written before checkpoints were chained have no ``prev``; they are accepted only before
the first chained one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import keys
from audit.errors import AuditLogError
from audit.record import canonical_json, format_ts, parse_ts
from keys import SigningKey, TrustStore

__all__ = [
    "AUDIT_SERVICE",
    "CHECKPOINT_GENESIS",
    "MAX_CHECKPOINT_BYTES",
    "Checkpoint",
    "DecodedCheckpoint",
    "decode_checkpoint",
    "sign_checkpoint",
    "verify_checkpoint",
]

AUDIT_SERVICE: Final = "audit"
"""The service whose keys sign checkpoints."""

MAX_CHECKPOINT_BYTES: Final = 4096
"""Longest checkpoint line accepted on read (an RSA-8192 signature is ~1.4 KiB encoded)."""

CHECKPOINT_GENESIS: Final = "0" * 64
"""The ``prev`` of the first chained checkpoint."""

_CHECKPOINT_KEYS: Final = frozenset({"seq", "hash", "ts", "kid", "alg", "prev", "sig"})
_LEGACY_KEYS: Final = _CHECKPOINT_KEYS - {"prev"}
_HEX64: Final = re.compile(r"[0-9a-f]{64}")
_KID: Final = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_ALG: Final = re.compile(r"[A-Za-z0-9]{1,16}")
_B64URL: Final = re.compile(r"[A-Za-z0-9_-]{1,2048}")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement that record ``seq`` of the log has hash ``hash``."""

    seq: int
    hash: str
    ts: datetime
    kid: str
    alg: str
    sig: str
    prev: str | None = None
    """The previous checkpoint's ``digest``; None only on a line from before chaining."""

    def signing_input(self) -> bytes:
        """The bytes the signature covers."""
        return _signing_input(
            self.seq, self.hash, format_ts(self.ts), self.kid, self.alg, self.prev
        )

    def to_json(self) -> dict[str, object]:
        """The checkpoint as the JSON object of its line."""
        obj: dict[str, object] = {
            "seq": self.seq,
            "hash": self.hash,
            "ts": format_ts(self.ts),
            "kid": self.kid,
            "alg": self.alg,
        }
        if self.prev is not None:
            obj["prev"] = self.prev
        obj["sig"] = self.sig
        return obj

    def to_line(self) -> bytes:
        """The checkpoint as one JSON line, newline included."""
        return json.dumps(self.to_json(), separators=(",", ":")).encode() + b"\n"

    @property
    def digest(self) -> str:
        """Hex SHA-256 of the canonical JSON of the whole checkpoint, signature included: what
        the next checkpoint's ``prev`` and an anchor refer to."""
        return hashlib.sha256(canonical_json(self.to_json())).hexdigest()


def _signing_input(seq: int, digest: str, ts: str, kid: str, alg: str, prev: str | None) -> bytes:
    signed: dict[str, object] = {"seq": seq, "hash": digest, "ts": ts, "kid": kid, "alg": alg}
    if prev is not None:
        signed["prev"] = prev
    return canonical_json(signed)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_checkpoint(
    signer: SigningKey, seq: int, digest: str, ts: datetime, *, prev: str = CHECKPOINT_GENESIS
) -> Checkpoint:
    """Sign ``(seq, digest)`` at ``ts`` with the audit service's key, chained to ``prev`` (the
    previous checkpoint's ``digest``)."""
    ts = parse_ts(format_ts(ts))  # drop sub-microsecond detail so the line round-trips
    signature = keys.sign(
        signer, _signing_input(seq, digest, format_ts(ts), signer.kid, signer.alg, prev)
    )
    return Checkpoint(
        seq=seq,
        hash=digest,
        ts=ts,
        kid=signer.kid,
        alg=signer.alg,
        sig=_b64url(signature),
        prev=prev,
    )


@dataclass(frozen=True, slots=True)
class DecodedCheckpoint:
    """A checkpoint read from disk and the exact bytes its signature must cover."""

    checkpoint: Checkpoint
    signing_input: bytes


def _malformed(message: str) -> AuditLogError:
    return AuditLogError(message, reason="malformed_checkpoint")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode_checkpoint(line: bytes) -> DecodedCheckpoint:
    """Decode one checkpoint line (without its newline); raises ``malformed_checkpoint``."""
    if len(line) > MAX_CHECKPOINT_BYTES:
        raise _malformed(f"checkpoint line is longer than {MAX_CHECKPOINT_BYTES} bytes")
    try:
        raw = json.loads(line.decode(), parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise _malformed(f"checkpoint is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict) or raw.keys() not in (_CHECKPOINT_KEYS, _LEGACY_KEYS):
        raise _malformed(
            "checkpoint must be an object with exactly seq, hash, ts, kid, alg, prev, sig"
        )
    seq, digest, ts_text = raw["seq"], raw["hash"], raw["ts"]
    kid, alg, sig, prev = raw["kid"], raw["alg"], raw["sig"], raw.get("prev")
    if type(seq) is not int or seq < 1:
        raise _malformed("checkpoint seq must be a positive integer")
    if "prev" in raw and (not isinstance(prev, str) or _HEX64.fullmatch(prev) is None):
        raise _malformed(f"checkpoint at seq {seq}: bad prev")
    checks = (
        ("hash", digest, _HEX64),
        ("kid", kid, _KID),
        ("alg", alg, _ALG),
        ("sig", sig, _B64URL),
    )
    for name, value, pattern in checks:
        if not isinstance(value, str) or pattern.fullmatch(value) is None:
            raise _malformed(f"checkpoint at seq {seq}: bad {name}")
    if not isinstance(ts_text, str):
        raise _malformed(f"checkpoint at seq {seq}: ts must be a string")
    try:
        ts = parse_ts(ts_text)
    except ValueError as exc:
        raise _malformed(f"checkpoint at seq {seq}: bad ts: {exc}") from exc
    checkpoint = Checkpoint(seq=seq, hash=digest, ts=ts, kid=kid, alg=alg, sig=sig, prev=prev)
    return DecodedCheckpoint(
        checkpoint=checkpoint, signing_input=_signing_input(seq, digest, ts_text, kid, alg, prev)
    )


def verify_checkpoint(decoded: DecodedCheckpoint, trust: TrustStore) -> None:
    """Check a checkpoint's signature against the audit service's keys in ``trust``.

    Raises ``checkpoint_unknown_kid`` (no such key, or not an audit key),
    ``checkpoint_key_expired`` (signed after the key's ``not_after``) or
    ``checkpoint_signature`` (wrong algorithm, undecodable or invalid signature).
    """
    checkpoint = decoded.checkpoint
    seq = checkpoint.seq
    owner = trust.service_of(checkpoint.kid)
    if owner != AUDIT_SERVICE:
        whose = "an unknown key" if owner is None else f"a key of service {owner!r}"
        raise AuditLogError(
            f"checkpoint at seq {seq} is signed with {whose} ({checkpoint.kid}), not an "
            f"{AUDIT_SERVICE!r} key",
            reason="checkpoint_unknown_kid",
            seq=seq,
        )
    # Judge the key at the checkpoint's own time: a key retired since still vouches for the
    # checkpoints it signed while valid, but not for any dated after its ``not_after``.
    key = trust.lookup(checkpoint.kid, now=checkpoint.ts.timestamp())
    if key is None:
        raise AuditLogError(
            f"checkpoint at seq {seq} is dated after key {checkpoint.kid} stopped being valid",
            reason="checkpoint_key_expired",
            seq=seq,
        )
    if key.alg != checkpoint.alg:
        raise AuditLogError(
            f"checkpoint at seq {seq} claims alg {checkpoint.alg} but key {checkpoint.kid} "
            f"is {key.alg}",
            reason="checkpoint_signature",
            seq=seq,
        )
    try:
        signature = _b64url_decode(checkpoint.sig)
    except (binascii.Error, ValueError) as exc:
        raise AuditLogError(
            f"checkpoint at seq {seq}: signature is not base64url",
            reason="checkpoint_signature",
            seq=seq,
        ) from exc
    if not keys.verify(key, decoded.signing_input, signature):
        raise AuditLogError(
            f"checkpoint at seq {seq}: signature does not verify with key {checkpoint.kid}",
            reason="checkpoint_signature",
            seq=seq,
        )
