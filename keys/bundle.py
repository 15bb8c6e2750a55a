"""The operator root key and the trust bundles it signs (DESIGN §6).

A trust bundle is a compact JWS (``typ: sealflow-trust+jwt``) signed by the root key, whose
payload is ``{"bundle_version": n, "issued_at": t, "services": {name: jwks}}``: every
service's public keys with their ring state and ``sealflow_not_after``. Daemons pin the
root's public key (``root.jwk``) and accept a bundle only if the root signed it and its
version is higher than the one they hold, so an old bundle cannot be replayed to bring back
a retired key. The root's private half (``root.pem``) signs bundles only and can be kept off
the servers.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from keys.algorithms import DEFAULT_ALGORITHM, Algorithm, check_algorithm, generate_private_key
from keys.errors import (
    MISSING_KEYS_ADVICE,
    KeyFileError,
    KeyMaterialError,
    TokenError,
    TrustStoreError,
)
from keys.files import create_exclusive, read_bounded
from keys.jose import decode_signed, encode_token
from keys.jwk import public_jwk, thumbprint
from keys.keyfile import read_private_key, write_private_key
from keys.keyset import parse_verification_jwk
from keys.records import SigningKey, VerificationKey
from keys.truststore import TrustStore
from schemas.limits import MAX_TRUST_BUNDLE_CHARS

__all__ = [
    "BUNDLE_TYP",
    "ROOT_KEY_FILE",
    "ROOT_PUBLIC_FILE",
    "ROOT_SERVICE",
    "TrustBundle",
    "create_root_key",
    "load_root_public",
    "load_root_signer",
]

BUNDLE_TYP: Final = "sealflow-trust+jwt"
ROOT_PUBLIC_FILE: Final = "root.jwk"
ROOT_KEY_FILE: Final = "root.pem"
ROOT_SERVICE: Final = "root"
MAX_BUNDLE_VERSION: Final = 2**53
_MAX_JWK_BYTES: Final = 64 * 1024


def _counter(payload: dict[str, object], name: str, low: int) -> int:
    value = payload.pop(name, None)
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not low <= value <= MAX_BUNDLE_VERSION
    ):
        raise TrustStoreError(
            "malformed_trust_store", f"trust bundle: {name} must be an integer in range"
        )
    return value


@dataclass(frozen=True, slots=True)
class TrustBundle:
    """A verified (or freshly signed) bundle: its version, time, keys and the JWS itself."""

    version: int
    issued_at: int
    store: TrustStore
    token: str

    @classmethod
    def sign(
        cls, root: SigningKey, store: TrustStore, *, version: int, now: float | None = None
    ) -> TrustBundle:
        """Sign ``store`` as bundle ``version`` with the root key."""
        if not 1 <= version <= MAX_BUNDLE_VERSION:
            raise TrustStoreError("invalid_version", f"bundle version {version} is out of range")
        issued_at = int(time.time() if now is None else now)
        payload = {"bundle_version": version, "issued_at": issued_at, **store.document()}
        token = encode_token(root, payload, BUNDLE_TYP)
        return cls(version=version, issued_at=issued_at, store=store, token=token)

    @classmethod
    def open(cls, token: str, root: VerificationKey) -> TrustBundle:
        """Verify ``token`` against the pinned ``root`` and validate its keys strictly."""
        try:
            payload = decode_signed(token, root, typ=BUNDLE_TYP, max_chars=MAX_TRUST_BUNDLE_CHARS)
        except TokenError as error:
            raise TrustStoreError(
                "untrusted_bundle", f"trust bundle refused ({error.reason}): {error}"
            ) from error
        version = _counter(payload, "bundle_version", 1)
        issued_at = _counter(payload, "issued_at", 0)
        store = TrustStore.from_document(payload, where=f"trust bundle {version}")
        return cls(version=version, issued_at=issued_at, store=store, token=token)


def create_root_key(keys_dir: Path, alg: Algorithm = DEFAULT_ALGORITHM) -> VerificationKey:
    """Make the operator root key: ``root.pem`` (private, 0600) and ``root.jwk`` (public)."""
    key = generate_private_key(check_algorithm(alg))
    write_private_key(keys_dir / ROOT_KEY_FILE, key)
    jwk = dict(public_jwk(key.public_key(), kid=thumbprint(key.public_key())))
    create_exclusive(
        keys_dir / ROOT_PUBLIC_FILE, (json.dumps(jwk, indent=2) + "\n").encode(), mode=0o644
    )
    return load_root_public(keys_dir / ROOT_PUBLIC_FILE)


def load_root_public(path: Path) -> VerificationKey:
    """The pinned root public key from ``path`` (a ``root.jwk``)."""
    try:
        data, _ = read_bounded(path, limit=_MAX_JWK_BYTES)
    except KeyFileError as error:
        if error.reason == "file_missing":
            raise TrustStoreError(
                "root_missing", f"no pinned root key at {path.resolve()} {MISSING_KEYS_ADVICE}"
            ) from error
        raise
    try:
        jwk = json.loads(data)
    except ValueError as error:
        raise TrustStoreError("malformed_root", f"{path}: is not JSON") from error
    if not isinstance(jwk, dict):
        raise TrustStoreError("malformed_root", f"{path}: is not a JWK object")
    try:
        return parse_verification_jwk(ROOT_SERVICE, jwk)
    except KeyMaterialError as error:
        raise TrustStoreError(error.reason, f"{path}: {error}") from error


def load_root_signer(path: Path, root: VerificationKey) -> SigningKey:
    """The root's private key at ``path``, checked to be the pinned ``root``'s other half."""
    try:
        private = read_private_key(path, alg=root.alg, kid=root.kid)
    except KeyFileError as error:
        if error.reason == "file_missing":
            raise TrustStoreError(
                "root_key_missing",
                f"the root private key is not at {path}: pass --root-key or set "
                "SEALFLOW_ROOT_KEY_FILE (it signs trust bundles and may be kept off the servers)",
            ) from error
        raise
    return SigningKey(service=ROOT_SERVICE, kid=root.kid, alg=root.alg, private_key=private)
