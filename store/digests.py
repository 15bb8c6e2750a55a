"""Validation of sha-256 hex digests used as blob names, and of bytes against their name."""

from __future__ import annotations

import hashlib
import re

from store.errors import BlobCorrupt

__all__ = ["check_blob", "check_sha256"]

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def check_sha256(value: str) -> str:
    """Return ``value`` if it is 64 lowercase hex characters, else raise ``ValueError``.

    Blob paths are built from digests, so this is also what keeps ``../`` out of them.
    """
    if not isinstance(value, str) or _SHA256_HEX.fullmatch(value) is None:
        raise ValueError("sha256 must be 64 lowercase hexadecimal characters")
    return value


def check_blob(data: bytes, sha256: str, size: int) -> None:
    """Raise ``BlobCorrupt`` unless ``data`` is ``size`` bytes hashing to ``sha256``."""
    if len(data) != size:
        raise BlobCorrupt(f"blob is {len(data)} bytes, the job says {size}")
    if hashlib.sha256(data).hexdigest() != sha256:
        raise BlobCorrupt(f"blob does not hash to {sha256}")
