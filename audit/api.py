"""The audit daemon's query API: how the gateway reads the log, without ever opening its files.

``GET /v1/records`` answers the last ``limit`` records that pass the filters of
``schemas.audit_query.AuditQuery`` (those of ``sealflow audit tail``, plus ``after`` for a live
tail), oldest first, as ``AuditRecordList`` JSON. Every request needs a service token from the
reading service (``keys.service_tokens``): its own key, ``aud`` ``audit``, scope
``audit:read``, short-lived, bound to this very request, not revoked (``kid``, ``jti``,
``sub``, from ``sealflow.control``), and spent on first sight. Refusals are
``401``/``403`` with ``{"error","detail"}``, logged, and recorded in the log itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import structlog
from aiohttp import web

from audit.errors import AuditLogError
from audit.query import AuditFilter, iter_records
from audit.record import AuditRecord
from broker import AuditSink, Revocations, SpentIds, SpentIdsFull, make_audit_event
from keys import (
    MAX_SERVICE_TOKEN_LIFETIME,
    ServiceClaims,
    TokenError,
    TrustStoreFile,
    request_digest,
    verify_service_token,
)
from schemas.api_admin import AuditRecordList, AuditRecordView
from schemas.audit_query import AUDIT_RECORDS_PATH, AuditQuery, AuditQueryError

__all__ = ["READ_SCOPE", "RECORDS_PATH", "QueryApi", "create_query_app", "serve_query_api"]

_log = structlog.get_logger("sealflow.audit.api")

READ_SCOPE: Final = "audit:read"
RECORDS_PATH: Final = AUDIT_RECORDS_PATH
AUDIENCE: Final = "audit"
_MAX_AUTHORIZATION: Final = 8192 + len("Bearer ")


@dataclass(frozen=True, slots=True)
class QueryApi:
    """What the API needs: the log, whose tokens to accept, where spent ids go, and limits."""

    directory: Path
    trust: TrustStoreFile
    reader: str
    replay: SpentIds
    audit: AuditSink | None = None
    revocations: Revocations | None = None
    leeway: int = 5
    max_lifetime: int = MAX_SERVICE_TOKEN_LIFETIME
    read_timeout: float = 20.0


class _Refused(Exception):
    """A request the API does not answer: an HTTP status, a code and a one-line detail."""

    def __init__(self, status: int, code: str, detail: str, *, jti: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.jti = status, code, detail, jti


def _error(status: int, code: str, detail: str) -> web.Response:
    """The ``{"error","detail"}`` answer (with a Bearer challenge on a 401)."""
    headers = {"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{code}"'}
    return web.json_response(
        {"error": code, "detail": detail},
        status=status,
        headers=headers if status == 401 else None,
    )


def _verify(api: QueryApi, request: web.Request, now: float) -> ServiceClaims:
    """The request's service token checked in full and spent; raises :class:`_Refused`."""
    header = request.headers.get("Authorization", "")
    if len(header) > _MAX_AUTHORIZATION or not header.startswith("Bearer "):
        raise _Refused(401, "unauthorized", "a service token (Authorization: Bearer) is required")
    token = header.removeprefix("Bearer ").strip()

    def check() -> ServiceClaims:
        return verify_service_token(
            token,
            api.trust.current.verification_keys(),
            issuer=api.reader,
            audience=AUDIENCE,
            scope=READ_SCOPE,
            leeway=api.leeway,
            max_lifetime=api.max_lifetime,
            now=now,
        )

    try:
        try:
            claims = check()
        except TokenError as error:
            # An unknown kid may be a freshly rotated key: reload the trust store once.
            if error.reason != "unknown_kid" or not api.trust.refresh(force=True):
                raise
            claims = check()
    except TokenError as error:
        status = 403 if error.reason == "scope_missing" else 401
        raise _Refused(status, error.reason, error.detail) from error
    if api.revocations is not None:
        kind = api.revocations.revoked(kid=claims.kid, jti=claims.jti, sub=claims.issuer, now=now)
        if kind is not None:
            raise _Refused(401, "revoked", f"the token's {kind} is revoked", jti=claims.jti)
    if api.replay.state(claims.jti, now) is not None:
        raise _Refused(401, "replay", "this service token was already used", jti=claims.jti)
    try:
        api.replay.claim(claims.jti, claims.expires_at + api.leeway, now)
    except SpentIdsFull as error:
        raise _Refused(503, "busy", "too many service tokens in flight", jti=claims.jti) from error
    api.replay.complete(claims.jti)  # spent on first sight, whatever happens next
    api.replay.flush(now)  # and durably so, when journaled: a restart must not forget it
    if claims.request != request_digest(request.method, request.raw_path):
        raise _Refused(401, "request_mismatch", "the token was made for another request")
    return claims


def _filter(query: AuditQuery) -> AuditFilter:
    """The log reader's filter for a parsed query."""
    return AuditFilter(
        types=frozenset(query.types) if query.types else None,
        actor=query.actor,
        job=query.job,
        since=query.since,
        after=query.after,
    )


def _view(record: AuditRecord) -> AuditRecordView:
    """A record as the API body shows it."""
    return AuditRecordView(
        seq=record.seq, ts=record.ts, event=record.event, prev=record.prev, hash=record.hash
    )


def _read(directory: Path, query: AuditQuery, deadline: float) -> list[AuditRecordView]:
    """The answer to ``query`` (blocking: run in a thread)."""
    records = iter_records(directory, _filter(query), last=query.limit, deadline=deadline)
    return [_view(r) for r in records]


async def _record_refusal(api: QueryApi, request: web.Request, refused: _Refused) -> None:
    """Record a refused request in the audit log as ``access.denied``."""
    if api.audit is None:
        return
    event = make_audit_event(
        source="audit",
        type="access.denied",
        action=f"{request.method} {request.path}"[:64],
        outcome="denied",
        reason=refused.code[:64],
        jti=refused.jti,
        detail=f"audit query API refused a request: {refused.detail}",
    )
    try:
        await api.audit.emit(event)
    except (AuditLogError, OSError) as error:
        _log.error("audit_api.refusal_not_recorded", error=str(error))


def _records_handler(api: QueryApi) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def records(request: web.Request) -> web.Response:
        """The last ``limit`` matching records, oldest first."""
        log = _log.bind(service="audit", path=request.path)
        try:
            claims = _verify(api, request, time.time())
        except _Refused as refused:
            log.warning("audit_api.refused", reason=refused.code, jti=refused.jti)
            await _record_refusal(api, request, refused)
            return _error(refused.status, refused.code, refused.detail)
        log = log.bind(jti=claims.jti, actor=claims.actor)
        try:
            query = AuditQuery.parse(request.query.items())
        except AuditQueryError as error:
            return _error(400, "bad_request", str(error))
        deadline = time.monotonic() + api.read_timeout  # the reading thread gives up too
        try:
            async with asyncio.timeout(api.read_timeout + 1):
                views = await asyncio.to_thread(_read, api.directory, query, deadline)
        except TimeoutError:
            log.warning("audit_api.read_timeout")
            return _error(503, "timeout", "reading the audit log took too long; narrow the filters")
        except AuditLogError as error:
            if error.reason == "read_timeout":
                log.warning("audit_api.read_timeout")
                return _error(
                    503, "timeout", "reading the audit log took too long; narrow the filters"
                )
            log.error("audit_api.log_unreadable", reason=error.reason, location=error.location)
            return _error(
                503,
                "log_unreadable",
                f"the audit log cannot be read ({error.reason}); run `sealflow audit verify`",
            )
        log.info("audit_api.answered", records=len(views))
        body = AuditRecordList(records=views).model_dump_json(exclude_none=True)
        return web.Response(text=body, content_type="application/json")

    return records


def create_query_app(api: QueryApi) -> web.Application:
    """The query API as an aiohttp application (GET only; anything else is 404/405); on
    cleanup it closes the spent-id journal, if there is one."""
    app = web.Application(client_max_size=1024)
    app.router.add_get(RECORDS_PATH, _records_handler(api), allow_head=False)

    async def close_journal(_: web.Application) -> None:
        if api.replay.journal is not None:
            api.replay.journal.close()

    app.on_cleanup.append(close_journal)
    return app


async def serve_query_api(api: QueryApi, host: str, port: int) -> web.AppRunner:
    """Start the query API on ``host:port``; clean the returned runner up to stop it."""
    runner = web.AppRunner(create_query_app(api), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    _log.info("audit_api.listening", host=host, port=port)
    return runner
