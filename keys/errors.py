"""Key-material errors, under :class:`schemas.SealflowError`: a ``reason`` and one line."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from schemas.errors import SealflowError

__all__ = [
    "MISSING_KEYS_ADVICE",
    "JWKError",
    "KeyFileError",
    "KeyMaterialError",
    "KeyRingError",
    "TokenError",
    "TrustStoreError",
]


MISSING_KEYS_ADVICE: Final = (
    "(SEALFLOW_KEYS_DIR, or --keys-dir): point it at this host's keys, or run `sealflow keys init` "
    "there on a new installation"
)
"""What to do about missing key material: run from the wrong directory, `keys init` would make
new keys in the wrong place, so the advice names the setting first."""


class KeyMaterialError(SealflowError):
    """Key material is missing, malformed, weak or unsafe; ``reason`` is a snake_case code."""

    reason = "key_material"

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail, reason=reason)


class KeyFileError(KeyMaterialError):
    """A file under the keys directory cannot be used; the detail starts with its path."""

    def __init__(self, path: Path, reason: str, detail: str) -> None:
        self.path = path
        super().__init__(reason, f"{path}: {detail}")


class JWKError(KeyMaterialError):
    """A JSON Web Key is malformed, inconsistent, private, weak or of an unsupported type."""


class KeyRingError(KeyMaterialError):
    """A key ring is missing, malformed, or cannot make the requested state change."""


class TrustStoreError(KeyMaterialError):
    """A trust store or trust bundle is missing, malformed, inconsistent or not acceptable."""


class TokenError(SealflowError):
    """A token failed verification; ``reason`` is a snake_case code such as ``expired``."""

    reason = "invalid_token"

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail, reason=reason)
