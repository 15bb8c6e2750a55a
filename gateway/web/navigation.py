"""Where a browser may be sent back to after sign-in: same-site paths only."""

from __future__ import annotations

from typing import Final
from urllib.parse import quote, urlsplit

__all__ = ["login_path", "safe_return_path"]

MAX_RETURN_CHARS: Final = 2000
DEFAULT_RETURN: Final = "/"
_NEVER_RETURN: Final = ("/login", "/callback", "/logout", "/signed-out", "/web/", "/static/")


def safe_return_path(candidate: str | None) -> str:
    """``candidate`` when it is a path on this site (not a sign-in step), else ``/``.

    Refused: absolute and scheme-relative URLs (``//host``, ``/\\host``), anything with a
    scheme or host, control characters and backslashes, over-long values.
    """
    if candidate is None or not candidate or len(candidate) > MAX_RETURN_CHARS:
        return DEFAULT_RETURN
    if not candidate.startswith("/") or candidate.startswith(("//", "/\\")):
        return DEFAULT_RETURN
    if "\\" in candidate or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in candidate):
        return DEFAULT_RETURN
    parts = urlsplit(candidate)
    if parts.scheme or parts.netloc:
        return DEFAULT_RETURN
    if parts.path.startswith(_NEVER_RETURN) or parts.path in {"/login", "/callback", "/logout"}:
        return DEFAULT_RETURN
    return candidate


def login_path(return_to: str) -> str:
    """``/login?next=…`` for a page the user asked for."""
    safe = safe_return_path(return_to)
    return "/login" if safe == DEFAULT_RETURN else f"/login?next={quote(safe, safe='')}"
