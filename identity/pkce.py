"""PKCE (RFC 7636), S256 only."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import Final

__all__ = ["is_valid_challenge", "is_valid_verifier", "s256_challenge", "verify_pkce"]

_VERIFIER: Final = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
_CHALLENGE: Final = re.compile(r"[A-Za-z0-9\-_]{43}")


def s256_challenge(verifier: str) -> str:
    """``BASE64URL(SHA256(verifier))`` without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def is_valid_verifier(verifier: str) -> bool:
    """True for 43..128 unreserved characters."""
    return _VERIFIER.fullmatch(verifier) is not None


def is_valid_challenge(challenge: str) -> bool:
    """True for a 43-character base64url SHA-256 value."""
    return _CHALLENGE.fullmatch(challenge) is not None


def verify_pkce(challenge: str, verifier: str) -> bool:
    """True when ``verifier`` is well-formed and hashes to ``challenge``."""
    if not is_valid_verifier(verifier):
        return False
    return hmac.compare_digest(s256_challenge(verifier), challenge)
