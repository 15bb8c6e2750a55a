"""The API for the pages' scripts: the same operations as ``/api``, authenticated by the session.

``/web/api/...`` mirrors the ``/api/...`` routes the pages use; each runs the very handler of
its ``Operation`` with the same scopes and roles, but the principal comes from the browser's
session instead of a bearer token, and every state-changing call must carry the session's
CSRF token in ``X-CSRF-Token``. ``/web/api/events`` is one live stream of all the user's
recent jobs, so a page needs one connection however many jobs it shows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import datetime
from typing import Final

from aiohttp import web
from aiohttp_sse import sse_response

from gateway.appkeys import HUB_KEY, SETTINGS_KEY, STORE_KEY
from gateway.auditing import audit_denied
from gateway.auth import PRINCIPAL_KEY, Handler
from gateway.errors import Forbidden, GatewayError, InsufficientScope, Unavailable
from gateway.operations import Operation
from gateway.queries import FINAL_STATES
from gateway.views import job_view
from gateway.web.browser import SignedIn, signed_in
from gateway.web.context import web_context
from gateway.web.csrf import CSRF_HEADER, SAFE_METHODS, check_csrf
from store import Job

__all__ = ["BRIDGED_OPERATIONS", "SESSION_API_PREFIX", "SessionExpired", "add_session_api"]

SESSION_API_PREFIX: Final = "/web"
BRIDGED_OPERATIONS: Final = frozenset(
    {
        "listJobs",
        "getJob",
        "getJobResult",
        "streamJobEvents",
        "uploadJobs",
        "deleteJob",
        "searchDocuments",
        "listAuditRecords",
        "listDeadLetters",
        "replayDeadLetter",
    }
)


class SessionExpired(GatewayError):
    """No live browser session: the page should send the user through sign-in again."""

    status = 401
    reason = "session_expired"


async def require_session(
    request: web.Request, *, scopes: Iterable[str] = (), roles: Iterable[str] = ()
) -> SignedIn:
    """The signed-in browser, allowed by scopes and roles and CSRF-checked when it changes state."""
    who = await signed_in(request)
    if who is None:
        raise SessionExpired("you are not signed in, or your session has expired")
    ctx = web_context(request)
    if request.method not in SAFE_METHODS:
        check_csrf(request, who.session.csrf, request.headers.get(CSRF_HEADER), ctx.settings.url)
    missing = [scope for scope in scopes if not who.principal.has_scope(scope)]
    if missing:
        why = f"missing scope {' '.join(missing)}"
        await audit_denied(request, who.principal, f"{why} (browser session)")
        raise InsufficientScope(f"this needs the scope {' '.join(missing)}", scopes=tuple(missing))
    wanted = tuple(roles)
    if wanted and not any(role in who.principal.roles for role in wanted):
        why = f"needs role {' or '.join(wanted)}"
        await audit_denied(request, who.principal, f"{why} (browser session)")
        raise Forbidden(f"this needs the role {' or '.join(wanted)}")
    request[PRINCIPAL_KEY] = who.principal
    return who


def _session_handler(op: Operation, timeout: float) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        await require_session(request, scopes=op.scopes, roles=op.roles)
        if op.own_timeout:
            return await op.handler(request)
        try:
            async with asyncio.timeout(timeout):
                return await op.handler(request)
        except TimeoutError as error:
            raise Unavailable("the request took too long; try again later") from error

    return handler


async def job_stream(request: web.Request) -> web.StreamResponse:
    """``text/event-stream`` of ``job`` events (JobView JSON) for the user's newest jobs.

    Every job is sent once at the start, then each change and each new job. Woken by the
    live-event hub for the jobs still under way, and re-reads the store every
    ``sse_poll_seconds`` besides; bounded by ``sse_max_seconds`` (the page's ``EventSource``
    reconnects) and by ``stream_max_jobs`` followed jobs, and closed when the user is revoked.
    It counts against the hub's caps whether or not any of the jobs is still under way.
    """
    who = await require_session(request, scopes=("jobs:read",))
    app = request.app
    settings, store, hub = app[SETTINGS_KEY], app[STORE_KEY], app[HUB_KEY]
    limit = web_context(request).settings.stream_max_jobs
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.sse_max_seconds
    sent: dict[str, tuple[str, datetime]] = {}
    with hub.stream(who.principal) as live:
        async with sse_response(request, ping_interval=settings.sse_heartbeat_seconds) as stream:
            while stream.is_connected():
                jobs: list[Job] = await store.list(owner=who.principal.subject, limit=limit)
                for job in reversed(jobs):
                    seen = (job.state, job.updated_at)
                    if sent.get(job.job_id) != seen:
                        await stream.send(job_view(job).model_dump_json(), event="job")
                        sent[job.job_id] = seen
                    if job.state not in FINAL_STATES and len(live.jobs) < limit:
                        hub.follow(live, job.job_id)
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                await live.wait(min(settings.sse_poll_seconds, remaining))
                if live.closed_because is not None:
                    break
    return stream


def add_session_api(app: web.Application, operations: Iterable[Operation]) -> None:
    """``/web/api/...`` for the bridged operations, and the jobs page's live stream."""
    timeout = app[SETTINGS_KEY].request_timeout
    for op in operations:
        if op.operation_id in BRIDGED_OPERATIONS:
            app.router.add_route(
                op.method,
                SESSION_API_PREFIX + op.path,
                _session_handler(op, timeout),
                name=f"session:{op.operation_id}",
            )
    app.router.add_get(SESSION_API_PREFIX + "/api/events", job_stream, name="session:jobStream")
