"""The gateway's request span: it continues a caller's W3C ``traceparent`` on the API (else
starts a trace), and every job the request submits is sealed into that trace."""

from __future__ import annotations

from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler
from opentelemetry import context as otel_context
from opentelemetry.trace import SpanKind, StatusCode

from broker.tracing import TRACEPARENT_HEADER, extract_traceparent, tracer

__all__ = ["trace_middleware"]

_API_PREFIX: Final = "/api/"


@web.middleware
async def trace_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """One SERVER span per request, child of an API caller's ``traceparent`` if it sent one.

    With tracing off, a valid incoming ``traceparent`` still names the trace the request's jobs
    are sealed into; nothing else is done.
    """
    parent = (
        extract_traceparent(request.headers.get(TRACEPARENT_HEADER))
        if request.path.startswith(_API_PREFIX) and TRACEPARENT_HEADER in request.headers
        else None
    )
    spans = tracer()
    if spans is None:
        if parent is None:
            return await handler(request)
        token = otel_context.attach(parent)
        try:
            return await handler(request)
        finally:
            otel_context.detach(token)
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else request.path
    with spans.start_as_current_span(
        f"{request.method} {route}",
        context=parent if parent is not None else otel_context.Context(),
        kind=SpanKind.SERVER,
        attributes={
            "http.request.method": request.method,
            "http.route": route,
            "url.path": request.path,
            "url.scheme": request.scheme,
        },
    ) as span:
        response = await handler(request)
        span.set_attribute("http.response.status_code", response.status)
        if response.status >= 500:
            span.set_status(StatusCode.ERROR)
        return response
