"""The key-material error hierarchy: each error has a machine-readable ``reason`` and one line."""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "JWKError",
    "KeyFileError",
    "KeyMaterialError",
    "KeyRingError",
    "TokenError",
    "TrustStoreError",
]


def _one_line(text: str) -> str:
    return " ".join(text.split())


class KeyMaterialError(Exception):
    """Key material is missing, malformed, weak or unsafe; ``reason`` is a snake_case code."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        self.message = _one_line(message)
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class KeyFileError(KeyMaterialError):
    """A file under the keys directory cannot be used; the message starts with its path."""

    def __init__(self, path: Path, reason: str, detail: str) -> None:
        self.path = path
        self.detail = _one_line(detail)
        super().__init__(reason, f"{path}: {self.detail}")


class JWKError(KeyMaterialError):
    """A JSON Web Key is malformed, inconsistent, private, weak or of an unsupported type."""


class KeyRingError(KeyMaterialError):
    """A key ring is missing, malformed, or cannot make the requested state change."""


class TrustStoreError(KeyMaterialError):
    """A trust store (``trust.json``) is missing, malformed or inconsistent."""


class TokenError(Exception):
    """A token failed verification; ``reason`` is a snake_case code such as ``expired``."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        self.message = _one_line(message)
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message
