"""The gateway's audit events: sealed for ``audit`` through the runtime's sink.

An audit event that cannot be published is logged, never turned into a client error: the
decision it records (an accepted job, a refused upload) has already been made.
"""

from __future__ import annotations

import structlog
from aiohttp import web

from broker import BrokerError, make_audit_event
from gateway.appkeys import AUDIT_KEY
from gateway.auth import Principal

__all__ = ["audit", "audit_denied"]

_log = structlog.get_logger("sealflow.gateway.audit")


async def audit(
    app: web.Application,
    *,
    type: str,
    action: str,
    outcome: str,
    actor: str | None,
    subject: str | None = None,
    reason: str | None = None,
    job: str | None = None,
    trace: str | None = None,
    jti: str | None = None,
    detail: str | None = None,
) -> None:
    """Emit one audit event with ``source="gateway"``."""
    sink = app.get(AUDIT_KEY)
    event = make_audit_event(
        source="gateway",
        type=type,
        action=action,
        outcome=outcome,
        actor=actor,
        subject=subject if subject is not None else actor,
        reason=reason,
        job=job,
        trace=trace,
        jti=jti,
        detail=detail,
    )
    if sink is None:
        _log.error("audit.no_sink", type=type, outcome=outcome)
        return
    try:
        await sink.emit(event)
    except BrokerError as error:
        _log.error("audit.emit_failed", type=type, outcome=outcome, error=str(error))


async def audit_denied(request: web.Request, principal: Principal, why: str) -> None:
    """The ``access.denied`` event of a 403: who asked for which route, and why not."""
    await audit(
        request.app,
        type="access.denied",
        action=f"{request.method} {request.path}"[:200],
        outcome="failure",
        actor=principal.subject,
        reason="forbidden",
        detail=why,
    )
