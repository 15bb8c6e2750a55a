"""Validation of sha-256 hex digests used as blob names."""

from __future__ import annotations

import re

__all__ = ["check_sha256"]

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def check_sha256(value: str) -> str:
    """Return ``value`` if it is 64 lowercase hex characters, else raise ``ValueError``.

    Blob paths are built from digests, so this is also what keeps ``../`` out of them.
    """
    if not isinstance(value, str) or _SHA256_HEX.fullmatch(value) is None:
        raise ValueError("sha256 must be 64 lowercase hexadecimal characters")
    return value
