"""The client's one exception hierarchy: every failure a command reports as one line."""

from __future__ import annotations

__all__ = [
    "ApiError",
    "CacheError",
    "ClientError",
    "DeviceFlowError",
    "LoginRequired",
    "OAuthError",
    "TransportError",
    "UploadError",
]


class ClientError(Exception):
    """Base of every client failure; ``str()`` is the one line a user sees."""


class CacheError(ClientError):
    """The token cache cannot be read or written safely (permissions, corruption)."""


class LoginRequired(ClientError):
    """No usable tokens: the user must run ``sealflow login`` again."""


class TransportError(ClientError):
    """A server could not be reached, timed out, or answered something unreadable."""


class OAuthError(ClientError):
    """The identity provider answered an OAuth error (RFC 6749 §5.2 body)."""

    def __init__(self, error: str, description: str | None = None, *, status: int = 400) -> None:
        self.error = error
        self.description = description or ""
        self.status = status
        text = f"{error}: {self.description}" if self.description else error
        super().__init__(f"identity provider refused: {text}")


class DeviceFlowError(ClientError):
    """The device authorization ended without tokens (denied, expired, or a protocol error)."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


class ApiError(ClientError):
    """The gateway answered an error body ``{"error", "detail"}``."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        self.status = status
        self.error = error
        self.detail = detail
        text = f"{error}: {detail}" if detail else error
        super().__init__(f"gateway answered {status} {text}")


class UploadError(ClientError):
    """A local file cannot be uploaded as it is (unreadable, or changed while being sent)."""
