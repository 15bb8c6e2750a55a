"""The key of the session cookie: ``SEALFLOW_SESSION_SECRET``, or a file under the keys dir.

The file ``web-session.key`` is made on first start (32 random bytes, base64url, mode 0600,
created exclusively so two gateways starting together agree on one key) and refused when
others may read it, like a private key.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from pathlib import Path
from typing import Final

import structlog

from keys import KeyFileError
from keys.files import create_exclusive, read_bounded
from schemas import SealflowError

__all__ = ["SESSION_KEY_FILE", "SessionSecretError", "load_session_secret"]

_log = structlog.get_logger("sealflow.gateway.web")

SESSION_KEY_FILE: Final = "web-session.key"
_MIN_SECRET_CHARS: Final = 32


class SessionSecretError(SealflowError):
    """The session secret is missing, too short or not safely stored."""

    reason = "session_secret_invalid"


def _derive(secret: str) -> bytes:
    """A Fernet key (32 bytes, base64url) from any secret string of enough length."""
    return base64.urlsafe_b64encode(hashlib.sha256(secret.encode("utf-8")).digest())


def load_session_secret(keys_dir: Path, configured: str | None) -> bytes:
    """The Fernet key of the session cookie (configured, or read/created under ``keys_dir``)."""
    if configured is not None:
        if len(configured) < _MIN_SECRET_CHARS:
            raise SessionSecretError(
                f"SEALFLOW_SESSION_SECRET must be at least {_MIN_SECRET_CHARS} characters"
            )
        return _derive(configured)
    path = keys_dir / SESSION_KEY_FILE
    try:
        keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not path.exists():
            try:
                create_exclusive(path, secrets.token_urlsafe(32).encode("ascii"), mode=0o600)
                _log.info("web.session_key_created", path=str(path))
            except KeyFileError as error:
                if error.reason != "file_exists":
                    raise
        data, _ = read_bounded(path, limit=1024, private=True)
    except KeyFileError as error:
        raise SessionSecretError(str(error)) from error
    except OSError as error:
        raise SessionSecretError(f"{path}: {error.strerror}") from error
    text = data.decode("ascii", "replace").strip()
    if len(text) < _MIN_SECRET_CHARS:
        raise SessionSecretError(f"{path} holds fewer than {_MIN_SECRET_CHARS} characters")
    return _derive(text)
