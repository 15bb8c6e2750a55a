"""The gateway's errors and the middleware that answers every failure as ``{"error","detail"}``.

A handler raises a :class:`GatewayError`; aiohttp's own ``HTTPException`` (unknown route,
wrong method, body too large) is mapped to the same shape, and anything unexpected is logged
and answered ``500`` without a trace. Security headers are added to every response.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import ClassVar, Final

import structlog
from aiohttp import web

from schemas.errors import SealflowError

__all__ = [
    "BadRequest",
    "Conflict",
    "Forbidden",
    "GatewayError",
    "InsufficientScope",
    "Internal",
    "Invalid",
    "InvalidUpload",
    "MethodNotAllowed",
    "NotFound",
    "NotReady",
    "RequestTimeout",
    "TooLarge",
    "TooManyRequests",
    "Unauthorized",
    "Unavailable",
    "UnsupportedType",
    "add_security_headers",
    "error_middleware",
    "error_response",
]

_log = structlog.get_logger("sealflow.gateway")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MAX_DETAIL_CHARS: Final = 500


class GatewayError(SealflowError):
    """An error answered to the client: ``status``, ``reason`` (the body's ``error``), a detail."""

    status: ClassVar[int] = 500
    reason = "internal"
    max_detail_chars: ClassVar[int] = MAX_DETAIL_CHARS

    def __init__(
        self, detail: str, *, reason: str | None = None, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(detail, reason=reason)
        self.headers: dict[str, str] = dict(headers or {})


class BadRequest(GatewayError):
    """A malformed request (query, path, body)."""

    status = 400
    reason = "bad_request"


class InvalidUpload(GatewayError):
    """A multipart upload that cannot be read: malformed, no file, an unexpected field."""

    status = 400
    reason = "invalid_upload"


class Unauthorized(GatewayError):
    """No token, or one that does not verify (RFC 6750 ``invalid_token``)."""

    status = 401
    reason = "unauthorized"

    def __init__(self, detail: str, *, token_given: bool = True) -> None:
        challenge = 'Bearer realm="sealflow"'
        if token_given:
            challenge += ', error="invalid_token"'
        super().__init__(detail, headers={"WWW-Authenticate": challenge})


class Forbidden(GatewayError):
    """Authenticated but not allowed (a missing role)."""

    status = 403
    reason = "forbidden"


class InsufficientScope(GatewayError):
    """The token lacks a scope the route needs (RFC 6750 ``insufficient_scope``)."""

    status = 403
    reason = "insufficient_scope"

    def __init__(self, detail: str, *, scopes: tuple[str, ...]) -> None:
        challenge = (
            f'Bearer realm="sealflow", error="insufficient_scope", scope="{" ".join(scopes)}"'
        )
        super().__init__(detail, headers={"WWW-Authenticate": challenge})


class NotFound(GatewayError):
    """No such resource, or one the caller may not see."""

    status = 404
    reason = "not_found"


class MethodNotAllowed(GatewayError):
    status = 405
    reason = "method_not_allowed"


class RequestTimeout(GatewayError):
    """The client took too long to send its request."""

    status = 408
    reason = "timeout"


class Conflict(GatewayError):
    status = 409
    reason = "conflict"


class NotReady(GatewayError):
    """The job has no result yet."""

    status = 409
    reason = "not_ready"


class TooLarge(GatewayError):
    status = 413
    reason = "too_large"


class UnsupportedType(GatewayError):
    status = 415
    reason = "unsupported_type"


class Invalid(GatewayError):
    """A well-formed request whose values are not acceptable."""

    status = 422
    reason = "invalid"


class TooManyRequests(GatewayError):
    status = 429
    reason = "too_many_requests"


class Unavailable(GatewayError):
    """A dependency (the broker, the issuer) cannot be reached now; try again later."""

    status = 503
    reason = "unavailable"


class Internal(GatewayError):
    status = 500
    reason = "internal"


_HTTP_CODES: Final[Mapping[int, str]] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "timeout",
    409: "conflict",
    413: "too_large",
    415: "unsupported_type",
    422: "invalid",
    429: "too_many_requests",
    503: "unavailable",
}
_HTTP_DETAILS: Final[Mapping[int, str]] = {
    404: "no such resource",
    405: "method not allowed on this resource",
    413: "request body is too large",
}
# Headers of an aiohttp HTTPException worth keeping on the JSON answer.
_KEPT_HEADERS: Final = ("Allow", "Retry-After", "WWW-Authenticate")


def error_response(
    status: int, code: str, detail: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    """The JSON error body every failure gets."""
    return web.json_response({"error": code, "detail": detail}, status=status, headers=headers)


def _from_http_exception(exc: web.HTTPException) -> web.Response:
    status = exc.status
    code = _HTTP_CODES.get(status, "internal" if status >= 500 else "bad_request")
    detail = _HTTP_DETAILS.get(status) or (exc.text or exc.reason or "request failed")
    if detail.startswith(f"{status}:"):
        detail = detail.split(":", 1)[1].strip()
    headers = {name: exc.headers[name] for name in _KEPT_HEADERS if name in exc.headers}
    return error_response(status, code, " ".join(detail.split())[:MAX_DETAIL_CHARS], headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error as JSON; redirects pass through; unexpected ones are logged, answered 500."""
    try:
        return await handler(request)
    except GatewayError as error:
        return error_response(error.status, error.reason, error.detail, error.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _from_http_exception(exc)
    except Exception:  # noqa: BLE001 - the one place that turns surprises into a 500
        _log.exception("request.failed", method=request.method, path=request.path)
        return error_response(500, "internal", "internal error")


_SECURITY_HEADERS: Final[Mapping[str, str]] = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
API_CSP: Final = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: security headers on every response, errors and streams included.

    A route that needs another Content-Security-Policy (the Swagger UI page) sets its own; it
    is kept. Everything under ``/api`` is ``Cache-Control: no-store``.
    """
    for name, value in _SECURITY_HEADERS.items():
        response.headers[name] = value
    response.headers.setdefault("Content-Security-Policy", API_CSP)
    if request.path == "/api" or request.path.startswith("/api/"):
        response.headers["Cache-Control"] = "no-store"
