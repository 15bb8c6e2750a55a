"""The server-rendered pages: sign-in (``/authorize``), device verification (``/device``).

Minimal HTML, no script, every value escaped."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Final

from identity.roles import ROLE_SCOPES

__all__ = ["PAGE_HEADERS", "device_page", "error_page", "login_page", "message_page"]

PAGE_HEADERS: Final[Mapping[str, str]] = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

_STYLE: Final = (
    "body{font-family:sans-serif;max-width:24rem;margin:4rem auto}"
    "label{display:block;margin:.5rem 0}input{width:100%}.error{color:#a00}"
)


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>"
    )


def login_page(
    *, client_id: str, hidden: Mapping[str, str], csrf: str, error: str | None = None
) -> str:
    """The sign-in form posting ``hidden`` back to ``/authorize`` with the credentials."""
    fields = "".join(
        f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'
        for name, value in hidden.items()
    )
    message = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    body = (
        f"<h1>Sign in to Sealflow</h1><p>{escape(client_id)} asks you to sign in.</p>{message}"
        '<form method="post" action="/authorize">'
        f'{fields}<input type="hidden" name="csrf_token" value="{escape(csrf)}">'
        '<label>Username <input name="username" autocomplete="username" required></label>'
        '<label>Password <input name="password" type="password" '
        'autocomplete="current-password" required></label>'
        '<button type="submit">Sign in</button></form>'
    )
    return _page("Sign in", body)


def error_page(reason: str, description: str) -> str:
    """A page for errors that must not be redirected (bad client or redirect URI)."""
    return _page(
        "Sign-in error",
        f"<h1>Sign-in error</h1><p><code>{escape(reason)}</code>: {escape(description)}</p>",
    )


_ROLE_GRANTS: Final = "; ".join(
    f"{role} <code>{' '.join(scopes)}</code>" for role, scopes in ROLE_SCOPES.items()
)


def device_page(
    *,
    csrf: str,
    user_code: str = "",
    client_id: str | None = None,
    scope: str | None = None,
    error: str | None = None,
) -> str:
    """The verification form of the device flow: user code, credentials, approve or deny."""
    message = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    asking = ""
    if client_id is not None:
        asking = f"<p>{escape(client_id)} asks for access"
        asking += f" (<code>{escape(scope)}</code>).</p>" if scope else ".</p>"
        asking += f"<p>It will get only what your role allows: {_ROLE_GRANTS}.</p>"
    body = (
        "<h1>Sign in a device</h1>"
        "<p>Enter the code your device shows, then sign in to approve it.</p>"
        f"{asking}{message}"
        '<form method="post" action="/device">'
        f'<input type="hidden" name="csrf_token" value="{escape(csrf)}">'
        '<label>Code <input name="user_code" autocomplete="off" autocapitalize="characters" '
        f'spellcheck="false" maxlength="32" value="{escape(user_code)}" required></label>'
        '<label>Username <input name="username" autocomplete="username" required></label>'
        '<label>Password <input name="password" type="password" '
        'autocomplete="current-password" required></label>'
        '<button type="submit" name="action" value="approve">Approve</button> '
        '<button type="submit" name="action" value="deny">Deny</button></form>'
    )
    return _page("Sign in a device", body)


def message_page(title: str, text: str) -> str:
    """A page with one message (device approved or denied, too many attempts)."""
    return _page(title, f"<h1>{escape(title)}</h1><p>{escape(text)}</p>")
