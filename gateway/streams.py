"""``GET /api/jobs/{id}/events``: a job's live state changes as server-sent events."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime

from aiohttp import web
from aiohttp_sse import sse_response

from gateway.appkeys import HUB_KEY, SETTINGS_KEY, STORE_KEY
from gateway.auth import PRINCIPAL_KEY
from gateway.queries import FINAL_STATES, visible_job
from gateway.views import job_view
from store import Job

__all__ = ["job_events"]


async def job_events(request: web.Request) -> web.StreamResponse:
    """``text/event-stream`` of ``state`` events (JobView JSON) until a final state.

    The current state is sent at once, then every change. Bounded: it closes after a final
    state, after ``sse_max_seconds``, or when the caller is revoked; comments every
    ``sse_heartbeat_seconds`` keep proxies from timing it out. Each open stream counts against
    the hub's caps (in all and per user).
    """
    app = request.app
    principal = request[PRINCIPAL_KEY]
    settings, store, hub = app[SETTINGS_KEY], app[STORE_KEY], app[HUB_KEY]
    job = await visible_job(store, principal, request.match_info["job_id"])
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.sse_max_seconds
    # Follow the job before the first read, so a change between the two is not missed.
    with hub.stream(principal) as live:
        hub.follow(live, job.job_id)
        async with sse_response(request, ping_interval=settings.sse_heartbeat_seconds) as stream:
            sent: tuple[str, datetime] | None = None
            current: Job | None = job
            while current is not None and stream.is_connected():
                seen = (current.state, current.updated_at)
                if seen != sent:
                    await stream.send(job_view(current).model_dump_json(), event="state")
                    sent = seen
                remaining = deadline - loop.time()
                if current.state in FINAL_STATES or remaining <= 0:
                    break
                await live.wait(min(settings.sse_poll_seconds, remaining))
                if live.closed_because is not None:
                    break
                current = await store.get(job.job_id)
            if current is None:
                await stream.send(json.dumps({"job_id": job.job_id}), event="deleted")
    return stream
