"""CSRF defence for the cookie-authenticated side: a per-session token on every state change.

The token lives in the server-side session, is put in each page (a hidden form field, and a
``<meta>`` the scripts send back as ``X-CSRF-Token``) and compared in constant time. A request
whose ``Origin`` (or ``Sec-Fetch-Site``) shows another site is refused before that, and the
cookie is ``SameSite=Lax`` besides.
"""

from __future__ import annotations

import hmac
from typing import Final
from urllib.parse import urlsplit

from aiohttp import web

from gateway.errors import Forbidden

__all__ = ["CSRF_FIELD", "CSRF_HEADER", "CsrfRejected", "check_csrf", "check_origin"]

CSRF_FIELD: Final = "csrf_token"
CSRF_HEADER: Final = "X-CSRF-Token"
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})


class CsrfRejected(Forbidden):
    """A state-changing request without the session's CSRF token, or from another site."""

    reason = "csrf_failed"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def check_origin(request: web.Request, own_url: str) -> None:
    """Refuse a request that the browser says comes from another site."""
    origin = request.headers.get("Origin")
    if origin is not None and origin != "null" and _origin(origin) != _origin(own_url):
        raise CsrfRejected("this request came from another site")
    if request.headers.get("Sec-Fetch-Site") == "cross-site":
        raise CsrfRejected("this request came from another site")


def check_csrf(request: web.Request, expected: str, sent: str | None, own_url: str) -> None:
    """Refuse unless ``sent`` is the session's token (and the request is same-site)."""
    check_origin(request, own_url)
    if sent is None or not sent or len(sent) > 256:
        raise CsrfRejected("the form's security token is missing; reload the page and try again")
    if not hmac.compare_digest(sent.encode("utf-8"), expected.encode("utf-8")):
        raise CsrfRejected("the form's security token is wrong; reload the page and try again")
