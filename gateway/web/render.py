"""Rendering a page: the template with its common context, and the headers every page gets.

Pages allow scripts and styles from this origin only (no inline script), forms to this origin
and the identity (sign-out goes on there), and are never cached, so after sign-out the back
button cannot show a signed-in page again.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

import aiohttp_jinja2
from aiohttp import web

from gateway.web.browser import SignedIn
from gateway.web.context import web_context
from gateway.web.csrf import CSRF_FIELD

NONE: Final = "\u2013"
"""What an empty value shows (an en dash)."""

__all__ = ["NONE", "PAGE_HEADERS", "filesize", "highlight", "iso", "page_csp", "render", "when"]

PAGE_HEADERS: Final[Mapping[str, str]] = {"Cache-Control": "no-store", "Vary": "Cookie"}


def page_csp(issuer_origin: str) -> str:
    """The pages' Content-Security-Policy."""
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; "
        f"form-action 'self' {issuer_origin}; frame-ancestors 'none'; base-uri 'none'"
    )


def render(
    request: web.Request,
    template: str,
    context: Mapping[str, Any],
    *,
    who: SignedIn | None,
    status: int = 200,
) -> web.Response:
    """``template`` rendered with the signed-in user, CSRF token and navigation state."""
    ctx = web_context(request)
    session = who.session if who is not None else None
    flash: list[str] = []
    if session is not None:
        flash, session.flash = session.flash, []
    full = {
        "user": who.principal.subject if who is not None else None,
        "role": who.principal.roles[0] if who is not None and who.principal.roles else None,
        "is_admin": who is not None and who.principal.is_admin,
        "can_write": who is not None and who.principal.has_scope("jobs:write"),
        "csrf": session.csrf if session is not None else "",
        "csrf_field": CSRF_FIELD,
        "path": request.path,
        "flash": flash,
        **context,
    }
    response = aiohttp_jinja2.render_template(template, request, full, status=status)
    response.headers.update(PAGE_HEADERS)
    response.headers["Content-Security-Policy"] = page_csp(ctx.issuer_origin)
    return response


def highlight(snippet: str) -> list[tuple[str, bool]]:
    """A search snippet (matches between ``[`` and ``]``) as ``(text, is_match)`` pieces."""
    pieces: list[tuple[str, bool]] = []
    rest = snippet
    while rest:
        start = rest.find("[")
        end = rest.find("]", start + 1) if start >= 0 else -1
        if start < 0 or end < 0:
            pieces.append((rest, False))
            break
        if start:
            pieces.append((rest[:start], False))
        pieces.append((rest[start + 1 : end], True))
        rest = rest[end + 1 :]
    return pieces


def filesize(size: int | None) -> str:
    """``1.2 MB``-style sizes."""
    if size is None:
        return NONE
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def when(moment: datetime | None) -> str:
    """A UTC timestamp as people read it (``2026-12-01 19:30:05 UTC``)."""
    if moment is None:
        return NONE
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(moment: datetime | None) -> str:
    """The machine-readable form for ``<time datetime=…>``."""
    return "" if moment is None else moment.astimezone(UTC).isoformat()
