"""Password and secret hashing: Argon2id for what people choose, SHA-256 for random tokens."""

from __future__ import annotations

import hashlib
import secrets
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = ["hash_password", "new_token", "token_hash", "verify_password"]

_HASHER: Final = PasswordHasher()  # argon2-cffi defaults: Argon2id, RFC 9106 low-memory profile
# Verified against when the user is unknown, so the answer takes as long as for a real one.
_DUMMY_HASH: Final = _HASHER.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    """An Argon2id PHC string for ``password``."""
    return _HASHER.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when ``password`` matches ``stored_hash``; ``None`` burns the same time and fails."""
    try:
        if stored_hash is None:
            _HASHER.verify(_DUMMY_HASH, password)
            return False
        return _HASHER.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def new_token(nbytes: int = 32) -> str:
    """A fresh random URL-safe token (codes, refresh tokens, CSRF values)."""
    return secrets.token_urlsafe(nbytes)


def token_hash(token: str) -> str:
    """The hex SHA-256 a random token is stored as."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
