"""Private key files: PKCS#8 PEM, created mode 0600, refused when others could read them."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from keys.algorithms import Algorithm, PrivateKey, algorithm_for_key
from keys.errors import KeyFileError, KeyMaterialError
from keys.files import create_exclusive, read_bounded
from keys.jwk import thumbprint

__all__ = ["MAX_KEY_FILE_BYTES", "read_private_key", "write_private_key"]

MAX_KEY_FILE_BYTES: Final = 64 * 1024
_PRIVATE_KEY_TYPES: Final = (
    ec.EllipticCurvePrivateKey,
    ed25519.Ed25519PrivateKey,
    rsa.RSAPrivateKey,
)


def write_private_key(path: Path, key: PrivateKey) -> None:
    """Write ``key`` as unencrypted PKCS#8 PEM to a new file created with mode 0600."""
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    create_exclusive(path, pem, mode=0o600)


def read_private_key(path: Path, *, alg: Algorithm, kid: str) -> PrivateKey:
    """The private key at ``path``, checked to be an ``alg`` key whose thumbprint is ``kid``."""
    data, _ = read_bounded(path, limit=MAX_KEY_FILE_BYTES, private=True)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError as error:
        raise KeyFileError(
            path, "malformed_key", "private key is encrypted; Sealflow needs it unencrypted"
        ) from error
    except (ValueError, UnsupportedAlgorithm) as error:
        raise KeyFileError(path, "malformed_key", "is not a PEM private key") from error
    if not isinstance(key, _PRIVATE_KEY_TYPES):
        raise KeyFileError(
            path, "key_type_mismatch", f"holds a {type(key).__name__}, not an {alg} key"
        )
    try:
        actual = algorithm_for_key(key)
    except KeyMaterialError as error:
        raise KeyFileError(path, error.reason, str(error)) from error
    if actual != alg:
        raise KeyFileError(
            path, "key_type_mismatch", f"holds an {actual} key but the ring records {alg}"
        )
    actual_kid = thumbprint(key.public_key())
    if actual_kid != kid:
        raise KeyFileError(
            path, "kid_mismatch", f"holds key {actual_kid}, not {kid} as the ring records"
        )
    return key
